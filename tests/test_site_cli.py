"""``billcast site``: a page folder on success; on failure a clear message, a distinct exit code, and no folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from billcast.cli import main
from billcast.renderer.errors import RecordError

from conftest import ROOT, sample
from test_site import Page, fake_render

SITE_EXIT = 7  # billcast.microsite.SiteError.exit_code


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_site_builds_a_folder_with_the_page_and_the_render_files(tmp_path, write_record, capsys) -> None:
    render = fake_render(tmp_path / "render")
    out = tmp_path / "site"
    code = main(["site", "--customer", str(write_record(sample("IT-000124"))), "--video-dir", str(render),
                 "--out", str(out), "--storyboard", str(ROOT / "storyboards" / "firm_reminder.yaml"),
                 "--token", "Tk3n-Tk3n_Tk3nTk3nTk3A", "--public-url", "https://bills.lumen.test",
                 "--pay-url", "https://pay.lumen.test"])
    assert code == 0
    assert {"index.html", "video.mp4", "poster.jpg", "captions.vtt", "static"} <= {p.name for p in out.iterdir()}
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    assert "Comunicazione di Lumen Energia, Ufficio Recupero Crediti" in page.text  # the storyboard's disclosure
    assert "https://pay.lumen.test/pay/Tk3n-Tk3n_Tk3nTk3nTk3A?option=full&src=site" in page.urls()
    assert "https://bills.lumen.test/r/Tk3n-Tk3n_Tk3nTk3nTk3A/" in capsys.readouterr().out
    assert leftovers(tmp_path) == []


def test_a_bad_record_exits_with_the_record_code_and_writes_nothing(tmp_path, write_record, capsys) -> None:
    render = fake_render(tmp_path / "render")
    bad = sample("IT-000123") | {"currency": "EUROS"}
    out = tmp_path / "site"
    code = main(["site", "--customer", str(write_record(bad)), "--video-dir", str(render), "--out", str(out)])
    assert code == RecordError.exit_code == 3
    err = capsys.readouterr().err
    assert "customer IT-000123: currency:" in err and "Traceback" not in err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("name, broken, message", [
    ("cta.json", None, "cta.json: is missing"),
    ("cta.json", "{\"version\": 1, \"duration\": ", "cta.json: is not valid JSON"),
    ("video.mp4", None, "video.mp4: is missing"),
    ("captions.vtt", "", "captions.vtt: is empty"),
])
def test_missing_or_corrupt_render_outputs_are_named_and_the_old_page_stays(tmp_path, write_record, capsys, name,
                                                                            broken, message) -> None:
    render = fake_render(tmp_path / "render")
    if broken is None:
        (render / name).unlink()
    else:
        (render / name).write_text(broken, encoding="utf-8")
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("the page published before", encoding="utf-8")
    code = main(["site", "--customer", str(write_record(sample("IT-000124"))), "--video-dir", str(render),
                 "--out", str(out)])
    assert code == SITE_EXIT
    err = capsys.readouterr().err
    assert message in err and str(render / name) in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text(encoding="utf-8") == "the page published before"
    assert leftovers(tmp_path) == []


def test_a_token_with_personal_data_is_refused(tmp_path, write_record, capsys) -> None:
    render = fake_render(tmp_path / "render")
    code = main(["site", "--customer", str(write_record(sample("IT-000123"))), "--video-dir", str(render),
                 "--out", str(tmp_path / "site"), "--token", "maria.rossi@example.org"])
    assert code == SITE_EXIT and "token:" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()
