"""The storyboard studio through Flask's test client: list, edit, check, save, drafts, history, previews, guards.

Each test gets its own copies of the storyboards and sample customers under
``tmp_path``; the app is made by :func:`make_app` (the studio's blueprint and
what it needs of the service), not by ``create_app``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from PIL import Image, ImageChops

from billcast.service import studio, studio_web
from billcast.service import ServiceSettings, auth
from billcast.service.context import Service
from billcast.service.studio_files import HISTORY_KEEP

from conftest import ROOT

ADMIN = "studio-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
GREETING = 'greeting: "Ciao {{ first_name }},"'
SAMPLE_FILES = ("customers.jsonl", "maria.json", "michael.json", "fatima.json")


def make_app(root: Path, **studio_settings: Any) -> Flask:
    """The studio as create_app will serve it, over copies of the storyboards and samples in ``root``;
    ``studio_settings`` (``studio_check_seconds=1``, ...) override the service's settings."""
    boards, samples = root / "storyboards", root / "examples"
    if not boards.exists():
        shutil.copytree(ROOT / "storyboards", boards)
        samples.mkdir()
        for name in SAMPLE_FILES:
            shutil.copy(ROOT / "examples" / name, samples / name)
    settings = ServiceSettings(campaigns=(), webhook_secret="whsec_studio_tests", session_secret=b"k" * 32,
                               admin_token=ADMIN, secure_cookies=False,
                               admin_ledger=f"sqlite:///{root / 'instance' / 'admin.db'}", **studio_settings)
    app = Flask("billcast.service.app", instance_path=str(root / "instance"))
    app.config.update(SECRET_KEY=settings.session_secret, SESSION_COOKIE_SECURE=False, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_NAME="billcast_admin",
                      MAX_CONTENT_LENGTH=1024 * 1024, BILLCAST_STORYBOARDS=boards, BILLCAST_SAMPLES=samples,
                      BILLCAST_STUDIO_CACHE=root / "instance" / "studio-segments", BILLCAST_STUDIO_ASSETS=root / "assets")
    app.extensions["billcast"] = Service(settings)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(studio.blueprint)
    return app


class Studio:
    """A signed-in admin's client, with the page's CSRF token and shortcuts for the JSON endpoints."""

    def __init__(self, app: Flask, root: Path) -> None:
        self.app, self.root = app, root
        self.client = app.test_client()
        self.client.environ_base["HTTP_AUTHORIZATION"] = BEARER["Authorization"]
        page = self.client.get("/studio/bill_explainer").get_data(as_text=True)
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        self.samples = dict(re.findall(r'<option value="(s[0-9a-f]+)"[^>]*>([^<]+)</option>', page))

    @property
    def boards(self) -> Path:
        return self.root / "storyboards"

    def live(self, name: str = "bill_explainer") -> str:
        return (self.boards / f"{name}.yaml").read_text(encoding="utf-8")

    def sample(self, first_name: str) -> str:
        return next(key for key, label in self.samples.items() if label.startswith(first_name))

    def close(self) -> None:
        """End this app's studio worker processes."""
        self.app.extensions["billcast_studio"].close()

    def post(self, path: str, body: dict, **headers: str):
        return self.client.post(path, json=body, headers={"X-CSRF-Token": self.csrf, **headers})

    def validate(self, text: str, name: str = "bill_explainer", **ask):
        return self.post(f"/studio/{name}/validate", {"text": text, **ask})

    def save(self, text: str, name: str = "bill_explainer", **ask):
        return self.post(f"/studio/{name}/save", {"text": text, **ask})

    def frame(self, text: str, t: float, name: str = "bill_explainer", **ask) -> Image.Image:
        response = self.post(f"/studio/{name}/frame", {"text": text, "t": t, **ask})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "image/jpeg"
        return Image.open(io.BytesIO(response.data)).convert("RGB")


@pytest.fixture
def st(tmp_path) -> Iterator[Studio]:
    made = Studio(make_app(tmp_path), tmp_path)
    yield made
    made.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[Studio]:
    """One studio for the tests that leave the live storyboards as they found them."""
    root = tmp_path_factory.mktemp("studio")
    made = Studio(make_app(root), root)
    yield made
    made.close()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def differs(a: Image.Image, b: Image.Image) -> int:
    """How many pixels differ noticeably between two frames."""
    return int((np.asarray(ImageChops.difference(a, b).convert("L")) > 40).sum())


# --- the list and the editor ---------------------------------------------------------------------


def test_the_list_shows_each_storyboard_with_description_languages_and_last_saved(st) -> None:
    response = st.client.get("/studio/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for name in ("bill_explainer", "firm_reminder", "soft_reminder", "soft_reminder_b"):
        assert f'href="/studio/{name}"' in page
    assert "A branded intro, the customer&#39;s bill total and lines" in page
    assert all(f'<span class="lang">{lang}</span>' in page for lang in ("ar", "de", "en", "it"))
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', page)
    assert "30 s · 6 scenes" in page


def test_the_editor_holds_the_yaml_as_escaped_data_never_as_a_template(st) -> None:
    hostile = st.live().replace("description: A branded intro",
                                "description: \"{{ config }} {{ 7*7 }} </textarea><script>alert(1)</script>\" #")
    (st.boards / "bill_explainer.yaml").write_text(hostile, encoding="utf-8")
    for path in ("/studio/", "/studio/bill_explainer"):
        page = st.client.get(path).get_data(as_text=True)
        assert "{{ config }} {{ 7*7 }}" in page  # shown as typed, not run
        assert "<script>alert(1)</script>" not in page and "&lt;/textarea&gt;&lt;script&gt;" in page
        assert "SECRET_KEY" not in page and "kkkkkkkk" not in page and "<Config" not in page
    editor = st.client.get("/studio/bill_explainer")
    textarea = re.search(r'<textarea id="source"[^>]*>(.*?)</textarea>', editor.get_data(as_text=True), re.S).group(1)
    assert textarea.count("\n") >= hostile.count("\n") - 1 and "scenes:" in textarea


def test_pages_are_served_under_a_strict_csp_and_load_only_the_studios_files(st) -> None:
    response = st.client.get("/studio/bill_explainer")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "<style" not in page and " style=" not in page and re.search(r"<script(?![^>]*\bsrc=)", page) is None
    for src in re.findall(r'(?:src|href)="(/studio/_static/[^"]+)"', page):
        found = st.client.get(src)
        assert found.status_code == 200, src
        found.close()
    for module in ("studio.js", "dom.js", "doc.js", "stage.js", "props.js", "timeline.js", "layers.js", "grid.js", "library.js",
                   "panels.js", "code.js", "index.js"):
        assert st.client.get(f"/studio/_static/{module}").mimetype == "text/javascript", module
    licences = st.client.get("/studio/_static/THIRD_PARTY_LICENSES.txt").get_data(as_text=True)
    assert "@codemirror/view" in licences and "MIT" in licences
    assert st.client.get("/studio/_static/studio.css").mimetype == "text/css"
    assert st.client.get("/studio/_static/site.js").status_code == 404


# --- saving ---------------------------------------------------------------------------------------


def test_saving_a_valid_text_replaces_the_file_atomically_and_keeps_a_history_entry_with_its_diff(st, monkeypatch):
    before = st.live()
    text = before.replace(GREETING, 'greeting: "Buongiorno {{ first_name }}!"')
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    response = st.save(text)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ok"] and response.get_json()["saved"]["changed"]
    assert st.live() == text
    live = str(st.boards / "bill_explainer.yaml")
    src = next(src for src, dst in replaced if dst == live)
    assert Path(src).parent == st.boards and Path(src).name.startswith(".bill_explainer.yaml.")
    assert not list(st.boards.glob(".*.tmp")), "no temporary file is left behind"

    history = st.client.get("/studio/bill_explainer/history").get_json()["history"]
    assert len(history) == 1 and history[0]["added"] == 1 and history[0]["removed"] == 1
    entry = st.client.get(f"/studio/bill_explainer/history/{history[0]['id']}").get_json()
    assert '-    greeting: "Ciao {{ first_name }},"' in entry["diff"].splitlines()
    assert '+    greeting: "Buongiorno {{ first_name }}!"' in entry["diff"].splitlines()
    assert entry["text"] == text
    assert (st.boards / ".history" / "bill_explainer" / f"{history[0]['id']}.diff").is_file()
    again = st.save(text).get_json()
    assert again["saved"]["changed"] is False and len(again["history"]) == 1  # nothing new to record


def test_an_invalid_text_becomes_a_draft_and_never_replaces_the_live_file(st) -> None:
    before = (st.boards / "bill_explainer.yaml").read_bytes()
    typo = st.live().replace(GREETING, 'greeting: "Ciao {{ frist_name }},"')
    response = st.save(typo)
    assert response.status_code == 422
    body = response.get_json()
    assert body["ok"] is False and body["draft"]["saved_at"]
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(53, "translations.it.greeting")]
    assert "frist_name" in body["errors"][0]["message"]
    assert (st.boards / "bill_explainer.yaml").read_bytes() == before
    assert (st.boards / ".drafts" / "bill_explainer.yaml").read_text(encoding="utf-8") == typo

    page = st.client.get("/studio/bill_explainer").get_data(as_text=True)
    assert "This is a draft." in page and "{{ frist_name }}" in page
    assert 'id="draft-banner" hidden' not in page
    listed = st.client.get("/studio/").get_data(as_text=True)
    assert '<span class="chip chip-draft">draft</span>' in listed

    fixed = typo.replace("frist_name", "first_name").replace("Ciao", "Salve")
    assert st.save(fixed).status_code == 200
    assert not (st.boards / ".drafts" / "bill_explainer.yaml").exists()
    assert st.live() == fixed


def test_a_yaml_mistake_is_a_draft_too_with_its_line(st) -> None:
    text = st.live().replace("fps: 25\n", "fps: [25\n", 1)
    body = st.save(text).get_json()
    assert body["errors"][0]["line"] in (9, 10) and "not valid YAML" in body["errors"][0]["message"]
    assert "fps: 25\n" in st.live()


def test_discarding_the_draft_gives_back_the_live_text(st) -> None:
    st.save(st.live().replace("fps: 25", "fps: 250"))
    body = st.post("/studio/bill_explainer/draft/discard", {}).get_json()
    assert body["text"] == st.live() and not (st.boards / ".drafts" / "bill_explainer.yaml").exists()


def test_someone_elses_save_in_between_is_not_overwritten_without_asking(st) -> None:
    page = st.client.get("/studio/bill_explainer").get_data(as_text=True)
    base = re.search(r'data-base="([0-9a-f]{64})"', page).group(1)
    theirs = st.live().replace("Ciao", "Ehi")
    (st.boards / "bill_explainer.yaml").write_text(theirs, encoding="utf-8")
    mine = st.live().replace("Ehi", "Salve")
    response = st.save(mine, base=base)
    assert response.status_code == 409 and response.get_json()["conflict"]
    assert st.live() == theirs
    assert st.save(mine, base=base, force=True).status_code == 200 and st.live() == mine


def test_the_history_keeps_the_last_saves_only(st, monkeypatch) -> None:
    from billcast.service import studio_files

    assert HISTORY_KEEP == 20
    monkeypatch.setattr(studio_files, "HISTORY_KEEP", 3)
    text = st.live()
    for n in range(3 + 2):
        assert st.save(text.replace("fps: 25", f"fps: {n + 1}")).status_code == 200
    history = st.client.get("/studio/bill_explainer/history").get_json()["history"]
    assert len(history) == 3
    newest = st.client.get(f"/studio/bill_explainer/history/{history[0]['id']}").get_json()
    assert "-fps: 4\n+fps: 5\n" in newest["diff"]
    oldest = st.client.get(f"/studio/bill_explainer/history/{history[-1]['id']}").get_json()
    assert "-fps: 2\n+fps: 3\n" in oldest["diff"]
    assert len(list((st.boards / ".history" / "bill_explainer").iterdir())) == 2 * 3


# --- checking -------------------------------------------------------------------------------------


def test_validate_reports_every_problem_with_its_line_and_plans_a_valid_text(st) -> None:
    text = st.live()
    ok = st.validate(text).get_json()
    assert ok["ok"] and ok["errors"] == [] and ok["preview"]["duration"] == 30.0
    assert [s["id"] for s in ok["preview"]["scenes"]][:2] == ["intro", "greeting"]
    assert ok["preview"]["locale"] == "it-IT"

    broken = text.replace("fps: 25", "fps: 0").replace("poster_time: 9.0", "poster_tme: 9.0")
    body = st.validate(broken).get_json()
    assert not body["ok"] and "preview" not in body
    found = {(e["line"], e["field"]) for e in body["errors"]}
    assert {(9, "fps"), (11, "poster_tme")} <= found
    assert st.live() == text  # checking writes nothing


def test_a_missing_field_is_found_in_every_language_not_only_the_previewed_one(st) -> None:
    text = st.live().replace('greeting: "Hallo {{ first_name }},"', 'greeting: "Hallo {{ vorname }},"')
    body = st.validate(text, language="it").get_json()
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(76, "translations.de.greeting")]
    assert body["errors"][0]["context"].startswith("with Maria Rossi, in de")


ATTACKS = [
    ("{{ ''.__class__.__mro__ }}", "__class__"),
    ("{{ config }}", "config"),
    ("{{ config.SECRET_KEY }}", "config"),
    ("{{ lipsum.__globals__ }}", "__globals__"),
    ("{{ cycler.__init__.__globals__.os.environ }}", "__init__"),
    ("{{ joiner() }}", "joiner"),
    ("{% set ns = namespace(a=1) %}{{ ns }}", "namespace"),
    ("{% include '/etc/passwd' %}", "include"),
    ("{% import 'os' as os %}", "import"),
    ("{{ self }}", "self"),
    ("{{ self._TemplateReference__context }}", "_TemplateReference__context"),
    ("{{ t|attr('_texts') }}", "attr"),
    ("{% if false %}{{ range.__self__ }}{% endif %}", "__self__"),
    ("{{ request.environ }}", "request"),
    ("{{ links['__class__'] }}", "__class__"),
]


@pytest.mark.parametrize("attack,word", ATTACKS, ids=[a for a, _ in ATTACKS])
def test_templates_typed_into_the_studio_cannot_reach_files_environment_or_internals(shared, attack, word,
                                                                                       monkeypatch) -> None:
    st = shared
    monkeypatch.setenv("BILLCAST_STUDIO_CANARY", "canary-9f3c1e")
    escaped = attack.replace("'", "''")
    text = st.live().replace(GREETING, f"greeting: '{escaped}'")
    for response in (st.validate(text), st.post("/studio/bill_explainer/frame", {"text": text, "t": 5}),
                     st.save(text)):
        assert response.status_code in (200, 422) and response.mimetype == "application/json"
        body = response.get_json()
        assert body["ok"] is False and "preview" not in body
        assert any(e["line"] == 53 and e["field"] == "translations.it.greeting" and word in e["message"]
                   for e in body["errors"]), body["errors"]
        if "doc" in body:  # the storyboard as read: the typed text comes back as typed, never run
            assert body.pop("doc")["translations"]["it"]["greeting"] == attack
        raw = json.dumps(body)
        for secret in ("root:x:0", "canary-9f3c1e", "kkkkkkkk", "whsec_studio_tests", ADMIN, "SECRET_KEY",
                       "<TemplateReference", "builtins", "object at 0x"):
            assert secret not in raw
    assert GREETING in st.live()


def test_yaml_that_would_expand_past_all_bounds_is_refused_before_it_is_parsed(shared) -> None:
    bomb = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    body = shared.validate("\n".join(bomb) + "\n" + shared.live()).get_json()
    assert [e["line"] for e in body["errors"]] == [1] and "aliases" in body["errors"][0]["message"]
    body = shared.validate("a: &a [1, *a]\n" + shared.live()).get_json()
    assert "inside its own anchor" in body["errors"][0]["message"]


BROKEN = [  # (what, the live text's line, what replaces it, a word its problem says)
    ("valid", GREETING, GREETING, ""),
    ("yaml", "fps: 25\n", "fps: [25\n", "not valid YAML"),
    ("field", "poster_time: 9.0", "poster_tme: 9.0", "unknown field"),
    ("value", "fps: 25", "fps: 0", "greater than or equal to 1"),
    ("merge field", GREETING, 'greeting: "Ciao {{ frist_name }},"', "frist_name"),
    ("other language", 'greeting: "Hallo {{ first_name }},"', 'greeting: "Hallo {{ vorname }},"', "vorname"),
    ("self", GREETING, "greeting: '{{ self }}'", "self"),
    ("attr", GREETING, "greeting: '{{ first_name|attr(\"upper\") }}'", "attr"),
    ("include", GREETING, "greeting: '{% include \"/etc/passwd\" %}'", "include"),
    ("branch never taken", GREETING, "greeting: '{% if false %}{{ range.__self__ }}{% endif %}'", "__self__"),
    ("alias", "name: bill_explainer", "name: &n [*n]", "inside its own anchor"),
]


@pytest.mark.parametrize("what,old,new,word", BROKEN, ids=[b[0] for b in BROKEN])
def test_billcast_check_and_the_studio_find_the_same_problems(shared, tmp_path, monkeypatch, capsys, what, old, new,
                                                               word) -> None:
    from billcast.cli import main

    st = shared
    assert old in st.live()
    text = st.live().replace(old, new, 1)
    (tmp_path / "bill_explainer.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # so that the CLI names the file as the studio does
    maria = ROOT / "examples" / "maria.json"
    code = main(["check", "bill_explainer.yaml", "--customer", str(maria)])
    printed = capsys.readouterr().err.replace(f"with {maria},", "with Maria Rossi,").splitlines()

    body = st.validate(text, customer=st.sample("Maria")).get_json()
    shown = [e["text"] + (f" ({e['context']})" if e["context"] else "") for e in body["errors"]]
    assert printed == shown
    assert (code == 0) == body["ok"] == (not word)
    assert all(line.startswith("bill_explainer.yaml:") for line in shown)
    assert word in "\n".join(shown)


# --- previews -------------------------------------------------------------------------------------


def test_the_frame_is_drawn_from_the_editors_text_and_changes_with_the_greeting(st) -> None:
    text = st.live()
    greeting_at = 5.0  # the greeting scene, its text settled
    before = st.frame(text, greeting_at)
    changed = text.replace(GREETING, 'greeting: "Buongiorno e benvenuta, {{ first_name }}!"')
    after = st.frame(changed, greeting_at)
    assert before.size == (1280, 720)
    assert differs(before, after) > 2000
    assert differs(after, st.frame(changed, greeting_at)) == 0  # the same frame again, from the cached plan
    assert st.live() == text  # the preview plans the editor's text; the file is not touched
    german = st.frame(text, greeting_at, customer=st.sample("Jürgen"))
    assert differs(before, german) > 2000


def test_slider_moves_reuse_the_plan_kept_by_the_worker(st) -> None:
    text = st.live()
    st.frame(text, 1.0)
    with st.app.app_context():
        pool = studio_web.studio().pool()
        [pid] = pool.pids()
        assert pid != os.getpid() and pool.checks_made() == 1
        for t in (5.0, 9.5, 20.0, 29.9):
            st.frame(text, t)
        assert pool.checks_made() == 1 and pool.pids() == [pid]  # one check, then only frames, in one process
        st.frame(text.replace("Ciao", "Salve"), 5.0)
        assert pool.checks_made() == 2


def test_a_pasted_record_previews_and_is_written_nowhere(st, caplog) -> None:
    record = json.loads((ROOT / "examples" / "maria.json").read_text(encoding="utf-8"))
    record.update(first_name="Zebediah", last_name="Quillfeather", email="zq@example.org")
    pasted = json.dumps(record)
    text = st.live()
    maria = st.frame(text, 5.0)
    zeb = st.frame(text, 5.0, customer="pasted", record=pasted)
    assert differs(maria, zeb) > 1000
    assert st.validate(text, customer="pasted", record=pasted).get_json()["ok"]
    assert st.save(text.replace("Ciao", "Salve"), customer="pasted", record=pasted).status_code == 200
    for folder in (st.root, Path(st.app.instance_path)):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"Zebediah" not in data and b"Quillfeather" not in data, path
    assert "Zebediah" not in caplog.text


def test_a_pasted_record_that_breaks_the_contract_is_refused_with_what_is_wrong(st) -> None:
    bad = st.validate(st.live(), customer="pasted", record='{"customer_id": "X-1", ')
    assert bad.status_code == 422 and bad.get_json()["record_errors"][0]["message"].startswith("not valid JSON")
    record = json.loads((ROOT / "examples" / "maria.json").read_text(encoding="utf-8"))
    record["currency"] = "EURO"
    body = st.validate(st.live(), customer="pasted", record=json.dumps(record)).get_json()
    assert any(e["field"] == "currency" for e in body["record_errors"])


@pytest.mark.slow
def test_the_preview_video_is_rendered_small_with_captions_and_calls_to_action(st) -> None:
    text = st.live("soft_reminder")
    michael = st.sample("Michael")
    started = st.post("/studio/soft_reminder/video", {"text": text, "customer": michael})
    assert started.status_code == 202
    job = started.get_json()
    deadline = time.monotonic() + 60
    while job["status"] == "rendering" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = st.client.get(job["status_url"]).get_json()
    assert job["status"] == "done", job
    assert job["size"] == [640, 360]
    files = job["files"]
    mp4 = st.client.get(files["video.mp4"])
    assert mp4.status_code == 200 and mp4.mimetype == "video/mp4" and mp4.data[4:8] == b"ftyp"
    assert mp4.headers["Accept-Ranges"] == "bytes"
    part = st.client.get(files["video.mp4"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == mp4.data[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(mp4.data)}"
    vtt = st.client.get(files["captions.vtt"])
    assert vtt.mimetype == "text/vtt" and vtt.get_data(as_text=True).startswith("WEBVTT") and "Michael" in vtt.get_data(as_text=True)
    cta = st.client.get(files["cta.json"]).get_json()
    assert cta["size"] == [640, 360] and cta["ctas"] and all(0 <= c["box"][0] <= 1 for c in cta["ctas"] if c["box"])
    assert st.client.get(files["poster.jpg"]).mimetype == "image/jpeg"
    again = st.post("/studio/soft_reminder/video", {"text": text, "customer": michael}).get_json()
    assert again["job"] == job["job"]  # the same text, customer and language: the render already made
    assert st.client.get(files["video.mp4"].replace("soft_reminder", "bill_explainer")).status_code == 404


# --- guards ---------------------------------------------------------------------------------------


ROUTES = [("GET", "/studio/"), ("GET", "/studio/bill_explainer"), ("POST", "/studio/bill_explainer/validate"),
          ("POST", "/studio/bill_explainer/frame"), ("POST", "/studio/bill_explainer/save"),
          ("POST", "/studio/bill_explainer/draft/discard"), ("GET", "/studio/bill_explainer/history"),
          ("POST", "/studio/bill_explainer/video"), ("GET", "/studio/bill_explainer/video/abc"),
          ("GET", "/studio/_static/studio.js"), ("POST", "/studio/bill_explainer/edit"),
          ("POST", "/studio/bill_explainer/layers"), ("POST", "/studio/bill_explainer/fields"),
          ("POST", "/studio/bill_explainer/translations"), ("GET", "/studio/_schema.json"), ("GET", "/studio/_assets"),
          ("POST", "/studio/_assets"), ("POST", "/studio/_assets/delete"), ("GET", "/studio/_assets/file/images/logo.png"),
          ("POST", "/studio/_new"), ("POST", "/studio/bill_explainer/duplicate"), ("POST", "/studio/bill_explainer/rename")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_needs_the_admin_token(tmp_path, method, path) -> None:
    client = make_app(tmp_path).test_client()
    assert client.open(path, method=method, json={"text": "x"}).status_code == 401
    wrong = client.open(path, method=method, json={"text": "x"}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    if method == "GET":
        browser = client.get(path, headers={"Accept": "text/html"})
        assert browser.status_code == 302 and "/signin" in browser.headers["Location"]


def test_posts_need_the_sessions_csrf_token(st) -> None:
    text = st.live()
    path = "/studio/bill_explainer/save"
    changed = text.replace("Ciao", "Salve")
    assert st.client.post(path, json={"text": changed}).status_code == 403
    assert st.client.post(path, json={"text": changed}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert st.post(path, {"text": changed}, Origin="https://evil.example").status_code == 403
    assert st.live() == text
    assert st.post(path, {"text": changed}, Origin="http://localhost").status_code == 200
    other = make_app(st.root).test_client()  # another session: the token is per session
    other.environ_base["HTTP_AUTHORIZATION"] = BEARER["Authorization"]
    assert other.post(path, json={"text": text}, headers={"X-CSRF-Token": st.csrf}).status_code == 403


def test_signing_in_gives_a_session_whose_token_opens_the_studio(tmp_path) -> None:
    client = make_app(tmp_path).test_client()
    assert client.post("/signin", data={"token": ADMIN, "next": "/studio/"}).headers["Location"] == "/studio/"
    page = client.get("/studio/bill_explainer").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    text = (tmp_path / "storyboards" / "bill_explainer.yaml").read_text(encoding="utf-8")
    assert client.post("/studio/bill_explainer/validate", json={"text": text},
                       headers={"X-CSRF-Token": csrf}).get_json()["ok"]


@pytest.mark.parametrize("name", ["..%2f..%2fetc%2fpasswd", "..", "%2e%2e", ".history", ".drafts", "bill_explainer.yaml",
                                  "..%5cbill_explainer", "nothing", "a" * 70, "%00bill_explainer"])
def test_names_that_are_not_storyboards_here_are_refused(shared, name) -> None:
    st = shared
    assert st.client.get(f"/studio/{name}").status_code in (404, 308)
    assert st.validate(st.live(), name=name).status_code in (404, 405)
    assert st.save(st.live(), name=name).status_code in (404, 405)


def test_a_symlink_out_of_the_folder_and_odd_history_ids_are_refused(st, tmp_path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(st.live(), encoding="utf-8")
    (st.boards / "sneaky.yaml").symlink_to(outside)
    assert st.client.get("/studio/sneaky").status_code == 404
    assert "sneaky" not in st.client.get("/studio/").get_data(as_text=True)
    for entry in ("..%2f..%2fbill_explainer", "20260101T000000000000Z", "x"):
        assert st.client.get(f"/studio/bill_explainer/history/{entry}").status_code == 404
