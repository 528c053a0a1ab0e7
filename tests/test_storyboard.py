"""Storyboard validation: every problem found at load, each named by file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from billcast.cli import main
from billcast.renderer import StoryboardErrors, load_storyboard, parse_storyboard
from billcast.renderer.errors import StoryboardError

from conftest import ROOT, STORYBOARDS

BASE = """\
name: test
size: [320, 180]
fps: 10
default_language: en
poster_time: 0.5
translations:
  en:
    hello: "Hello {{ first_name }}"
  it:
    hello: "Ciao {{ first_name }}"
scenes:
  - id: one
    duration: 2
    background: {color: "#0E4D64"}
    narration: "{{ t.hello }}"
    layers:
      - kind: text
        text: "{{ t.hello }}"
        box: [10, 10, 300, 60]
      - kind: image
        src: images/logo.png
        box: [10, 100, 100, 40]
"""


def errors_of(text: str, tmp_path: Path | None = None) -> list[StoryboardError]:
    with pytest.raises(StoryboardErrors) as info:
        parse_storyboard(text, path="board.yaml")
    return info.value.errors


def one_error(text: str) -> StoryboardError:
    errors = errors_of(text)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_the_base_storyboard_is_valid() -> None:
    board = parse_storyboard(BASE, path="board.yaml")
    assert board.duration == 2 and board.model.fps == 10


@pytest.mark.parametrize("path", STORYBOARDS, ids=lambda p: p.name)
def test_shipped_storyboards_are_valid_in_four_languages(path: Path) -> None:
    board = load_storyboard(path)
    assert set(board.model.translations) == {"en", "it", "de", "ar"}
    keys = set(board.model.translations["en"])
    for lang, texts in board.model.translations.items():
        assert set(texts) == keys, f"{lang} misses {keys - set(texts)}"


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), [
    ("    duration: 2\n", "    duration: -1\n", 13, "scenes[0].duration", "greater than 0"),
    ("fps: 10\n", "fps: 0\n", 3, "fps", "greater than or equal to 1"),
    ("size: [320, 180]\n", "size: [321, 180]\n", 2, "size", "even"),
    ('        box: [10, 10, 300, 60]\n', '        box: [10, 10, 0, 60]\n', 19, "scenes[0].layers[0].box", "> 0"),
    ('        text: "{{ t.hello }}"\n', '        text: "{{ t.hello }}"\n        colour: red\n', 19,
     "scenes[0].layers[0].colour", "unknown field"),
    ('      - kind: image\n', '      - kind: video\n', 20, "scenes[0].layers[1].kind", "does not match"),
    ('    background: {color: "#0E4D64"}\n', '    background: {color: "teal-ish"}\n', 14,
     "scenes[0].background.color", "not a colour"),
    ('    narration: "{{ t.hello }}"\n', '    narration: "{{ t.helo }}"\n', 15, "scenes[0].narration",
     "t.helo is not a translation key"),
    ('        text: "{{ t.hello }}"\n', '        text: "{{ first_name }"\n', 18, "scenes[0].layers[0].text",
     "template error"),
    ('        src: images/logo.png\n', '        src: ../pyproject.toml\n', 21, "scenes[0].layers[1].src",
     "may not leave"),
    ('        src: images/logo.png\n', '        src: /etc/passwd\n', 21, "scenes[0].layers[1].src", "may not leave"),
    ('        src: images/logo.png\n', '        src: images/nope.png\n', 21, "scenes[0].layers[1].src",
     "asset not found"),
    ("poster_time: 0.5\n", "poster_time: 5\n", 5, "poster_time", "before the end"),
    ('    hello: "Ciao {{ first_name }}"\n', '    hello: "Ciao"\n    extra: "x"\n', 11, "translations.it.extra",
     "not in the default language"),
    ("default_language: en\n", "default_language: fr\n", 4, "default_language", "has no translations"),
])
def test_errors_name_the_line_and_field(old: str, new: str, line: int, field: str, words: str) -> None:
    assert old in BASE
    error = one_error(BASE.replace(old, new, 1))
    assert (error.path, error.line, error.field) == ("board.yaml", line, field), str(error)
    assert words in error.message
    assert str(error).startswith(f"board.yaml:{line}: {field}: ")


def test_every_problem_is_listed_in_file_order() -> None:
    text = BASE.replace("fps: 10", "fps: 0").replace("duration: 2", "duration: 0")
    errors = errors_of(text)
    assert [(e.line, e.field) for e in errors] == [(3, "fps"), (13, "scenes[0].duration")]


def test_cta_must_end_within_its_scene() -> None:
    text = BASE + "    cta: {label: Pay, action: pay, start: 1, end: 3}\n"
    error = one_error(text)
    assert (error.line, error.field) == (23, "scenes[0].cta.end")


def test_link_cta_needs_a_link_name() -> None:
    error = one_error(BASE + "    cta: {label: Go, action: link, start: 0, end: 1}\n")
    assert error.field == "scenes[0].cta" and "needs a link" in error.message


def test_yaml_syntax_errors_have_a_line() -> None:
    error = one_error_plain("name: x\nscenes: [\n  - {id: a\n")
    assert error.line is not None and "not valid YAML" in error.message


def one_error_plain(text: str) -> StoryboardError:
    with pytest.raises(StoryboardError) as info:
        parse_storyboard(text, path="board.yaml")
    return info.value


def test_not_a_mapping() -> None:
    assert "must be a YAML mapping" in one_error_plain("- just\n- a list\n").message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(StoryboardError, match="cannot read"):
        load_storyboard(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(StoryboardError, match="UTF-8"):
        load_storyboard(bad)


def test_check_cli_prints_problems_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("duration: 2", "duration: -1"), encoding="utf-8")
    assert main(["check", str(good)]) == 0
    assert main(["check", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:13: scenes[0].duration: Input should be greater than 0, got -1" in err


def test_check_cli_on_the_shipped_storyboards() -> None:
    assert main(["check", *map(str, STORYBOARDS)]) == 0


def test_asset_dir_is_the_projects() -> None:
    board = parse_storyboard(BASE, path="board.yaml")
    assert board.assets_dir == ROOT / "assets"


def test_indentation_of_block_templates_is_kept(tmp_path: Path) -> None:
    text = BASE.replace('    narration: "{{ t.hello }}"\n', textwrap.indent('narration: |\n  {{ t.hello }}.\n  Bye.\n',
                                                                            "    "))
    board = parse_storyboard(text, path="board.yaml")
    assert board.model.scenes[0].narration == "{{ t.hello }}.\nBye.\n"


def test_check_cli_with_customers_finds_fields_the_records_lack(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    examples = ROOT / "examples"
    bill = ROOT / "storyboards" / "bill_explainer.yaml"
    assert main(["check", str(bill), "--customer", str(examples / "maria.json"),
                 "--customer", str(examples / "fatima.json")]) == 0
    typo = tmp_path / "typo.yaml"
    text = bill.read_text(encoding="utf-8")
    assert 'greeting: "Ciao {{ first_name }},"' in text
    typo.write_text(text.replace('greeting: "Ciao {{ first_name }},"', 'greeting: "Ciao {{ frist_name }},"'),
                    encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(typo)]) == 0  # the syntax is fine: only a record shows the field is missing
    assert main(["check", str(typo), "--customer", str(examples / "maria.json")]) == 2
    err = capsys.readouterr().err
    line = text[:text.index('greeting: "Ciao')].count("\n") + 1
    assert f"{typo}:{line}: translations.it.greeting:" in err and "frist_name" in err and "maria.json" in err
