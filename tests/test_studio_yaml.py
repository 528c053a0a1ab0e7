"""Structured edits of a storyboard's text: what they change, and everything they leave as it was written."""

from __future__ import annotations

import difflib

import pytest
import yaml

from billcast.service.studio_yaml import EditError, Editor, edit_data, parse_ops

from conftest import ROOT, STORYBOARDS

BILL = (ROOT / "storyboards" / "bill_explainer.yaml").read_text(encoding="utf-8")


def edit(text: str, *ops: dict) -> str:
    return Editor().edit(text, parse_ops(list(ops)))


def changed(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines removed and the lines added (a line that is the same on both sides is neither)."""
    a, b = before.splitlines(), after.splitlines()
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        pairs = list(zip(a[i1:i2], b[j1:j2])) if i2 - i1 == j2 - j1 else []
        removed += [x for x, y in pairs if x != y] if pairs else a[i1:i2]
        added += [y for x, y in pairs if x != y] if pairs else b[j1:j2]
    return removed, added


@pytest.mark.parametrize("path", STORYBOARDS, ids=lambda p: p.name)
def test_a_shipped_storyboard_survives_an_edit_that_changes_nothing_byte_for_byte(path) -> None:
    text = path.read_text(encoding="utf-8")
    assert edit(text, {"op": "set", "path": ["name"], "value": yaml.safe_load(text)["name"]}) == text


def test_setting_a_value_changes_its_line_only_in_its_own_style() -> None:
    after = edit(BILL, {"op": "set", "path": ["scenes", 0, "layers", 2, "color"], "value": "#FF0000"},
                 {"op": "set", "path": ["scenes", 0, "layers", 2, "box", 0], "value": 180},
                 {"op": "set", "path": ["scenes", 0, "layers", 2, "font", "size"], "value": 44.0})
    assert changed(BILL, after) == (['        box: [140, 430, 1000, 70]', '        font: {weight: regular, size: 40, min_size: 24}',
                                     '        color: "#FFFFFF"'],
                                    ['        box: [180, 430, 1000, 70]', '        font: {weight: regular, size: 44, min_size: 24}',
                                     '        color: "#FF0000"'])
    assert after.startswith("# The monthly bill, explained in about 30 seconds.\n")


def test_texts_are_quoted_only_when_yaml_needs_it_and_keep_the_quotes_they_had() -> None:
    after = edit(BILL, {"op": "set", "path": ["translations", "it", "tagline"], "value": "Ciao {{ first_name }}: ecco"},
                 {"op": "set", "path": ["translations", "it", "breakdown"], "value": "Le voci della bolletta"},
                 {"op": "set", "path": ["translations", "it", "greeting"], "value": "Salve"})
    removed, added = changed(BILL, after)
    assert added == ['    tagline: "Ciao {{ first_name }}: ecco"', '    greeting: "Salve"',
                     '    breakdown: Le voci della bolletta']
    assert yaml.safe_load(after)["translations"]["it"]["tagline"] == "Ciao {{ first_name }}: ecco"


def test_a_new_key_goes_before_animate_in_flow_style_when_small() -> None:
    after = edit(BILL, {"op": "set", "path": ["scenes", 1, "layers", 2, "valign"], "value": "middle"},
                 {"op": "set", "path": ["scenes", 0, "layers", 0, "font"], "value": {"size": 30}})
    lines = after.splitlines()
    at = lines.index("        valign: middle")
    assert lines[at + 1].startswith("        animate: [{type: fade_in")
    assert "        font: {size: 30}" in lines and changed(BILL, after)[0] == []


def test_a_new_translation_takes_its_place_in_the_default_languages_order() -> None:
    without = BILL.replace("    breakdown: Come si compone la bolletta\n", "")
    after = edit(without, {"op": "set", "path": ["translations", "it", "breakdown"], "value": "Il dettaglio", "index": 5})
    assert after == BILL.replace("Come si compone la bolletta", "Il dettaglio")


def test_scenes_added_duplicated_moved_and_deleted_keep_their_blank_lines_and_comments() -> None:
    twin = edit(BILL, {"op": "duplicate", "path": ["scenes"], "index": 0})
    assert "\n\n  - id: intro_2\n    duration: 3.5\n" in twin and "\n\n  - id: greeting\n" in twin
    assert "  # The same for every customer: encoded once per language.\n  - id: intro\n" in twin
    last = edit(BILL, {"op": "move", "path": ["scenes"], "from": 5, "to": 0})
    assert "\n\n  - id: intro\n" in last and last.endswith("delay: 0.9}]\n")  # no blank line left at the end
    assert [s["id"] for s in yaml.safe_load(last)["scenes"]] == ["pay", "intro", "greeting", "total", "usage", "due"]
    gone = edit(BILL, {"op": "delete", "path": ["scenes", 5]})
    assert gone.endswith("delay: 0.9}]\n") and "id: pay" not in gone
    added = edit(BILL, {"op": "insert", "path": ["scenes"], "index": 6,
                        "value": {"id": "outro", "duration": 3, "background": {"color": "teal"}, "layers": []}})
    assert added.endswith("delay: 1.2}]\n\n  - id: outro\n    duration: 3\n    background: {color: teal}\n    layers: []\n")


def test_a_deleted_key_gives_its_blank_line_to_the_one_before() -> None:
    after = edit(BILL, {"op": "delete", "path": ["colors", "line"]})
    assert '  muted: "#4A6572"\n\ntranslations:\n' in after


def test_an_animation_list_is_changed_in_place() -> None:
    after = edit(BILL, {"op": "set", "path": ["scenes", 0, "layers", 2, "animate"],
                        "value": [{"type": "fade_in", "duration": 0.6, "delay": 1.5},
                                  {"type": "fade_out", "duration": 0.4, "delay": 3.0}]})
    assert changed(BILL, after)[1] == ["        animate: [{type: fade_in, duration: 0.6, delay: 1.5}, "
                                       "{type: fade_out, duration: 0.4, delay: 3}]"]


def test_an_oddly_written_text_keeps_its_odd_lines_where_the_edit_did_not_go() -> None:
    odd = BILL.replace("fps: 25", "fps:    25").replace("poster_time: 9.0", "poster_time: 9.0   # seconds")
    odd = odd.replace("box: [340, 220, 600, 150]", "box: [ 340,220 , 600, 150 ]")
    after = edit(odd, {"op": "set", "path": ["scenes", 0, "layers", 2, "color"], "value": "amber"})
    assert changed(odd, after) == (['        color: "#FFFFFF"'], ['        color: "amber"'])


def test_four_space_indents_are_kept() -> None:
    text = "name: x\nscenes:\n    -   id: a\n        duration: 2\n        layers: []\ncolors:\n    teal: '#0E4D64'\n"
    after = edit(text, {"op": "set", "path": ["scenes", 0, "duration"], "value": 3})
    assert changed(text, after) == (["        duration: 2"], ["        duration: 3"])


def test_the_same_operations_on_plain_data_say_the_same() -> None:
    ops = parse_ops([{"op": "set", "path": ["scenes", 2, "layers", 1, "box"], "value": [70, 90, 520, 540]},
                     {"op": "duplicate", "path": ["scenes"], "index": 1},
                     {"op": "delete", "path": ["scenes", 0, "layers", 1]}])
    data = yaml.safe_load(BILL)
    assert edit_data(data, ops) == yaml.safe_load(Editor().edit(BILL, ops))
    assert data == yaml.safe_load(BILL)  # the plain data given is left alone


@pytest.mark.parametrize("ops,message", [
    ([], "ops must be a list of 1 to"),
    ([{"op": "exec", "path": ["name"]}], "op must be set"),
    ([{"op": "set", "path": ["__class__"], "value": 1}], "not a key"),
    ([{"op": "set", "path": ["scenes", -1], "value": 1}], "index out of range"),
    ([{"op": "set", "path": ["scenes", 10 ** 6], "value": 1}], "index out of range"),
    ([{"op": "set", "path": "scenes", "value": 1}], "path must be a list"),
    ([{"op": "set", "path": ["name"]}], "needs a value"),
    ([{"op": "set", "path": ["name"], "value": float("nan")}], "finite"),
    ([{"op": "set", "path": ["name"], "value": [[[[[[[[[[1]]]]]]]]]]}], "nested too deeply"),
    ([{"op": "set", "path": ["name"], "value": {"a b": 1}}], "not a key"),
    ([{"op": "move", "path": ["scenes"], "from": 0}], "move needs to"),
    ([{"op": "set", "path": ["x"] * 13, "value": 1}], "at most 12"),
    ([{"op": "set", "path": ["name"], "value": 1}] * 65, "ops must be a list of 1 to 64"),
])
def test_operations_that_do_not_make_sense_are_refused_by_shape(ops, message) -> None:
    with pytest.raises(EditError, match=message):
        parse_ops(ops)


@pytest.mark.parametrize("op,message", [
    ({"op": "set", "path": ["scenes", 9, "duration"], "value": 1}, "no item 9 at scenes"),
    ({"op": "set", "path": ["name", "x"], "value": 1}, "name is not a mapping"),
    ({"op": "move", "path": ["scenes"], "from": 0, "to": 6}, "cannot move item 0 to 6"),
    ({"op": "insert", "path": ["scenes"], "index": 9, "value": {}}, "cannot insert at 9"),
    ({"op": "duplicate", "path": ["colors"], "index": 0}, "is not a list"),
])
def test_operations_that_do_not_fit_the_text_are_refused_with_where(op, message) -> None:
    with pytest.raises(EditError, match=message):
        edit(BILL, op)


@pytest.mark.parametrize("text", ["name: [unclosed\n", "- a list\n", "a: " + "[" * 2000 + "\n"])
def test_a_text_that_is_not_a_yaml_mapping_is_not_edited(text) -> None:
    with pytest.raises(EditError, match="fix it in the code view first"):
        edit(text, {"op": "set", "path": ["name"], "value": "x"})
