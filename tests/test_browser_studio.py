"""The studio in a real browser: Debian's headless Chromium, driven by Playwright, against a real server.

The studio app (see ``test_studio.make_app``) runs in werkzeug's threaded
server on a free port; the admin token travels as a header on every request.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageChops
from werkzeug.serving import make_server

from conftest import chromium_browser
from test_studio import ADMIN, make_app

pytestmark = pytest.mark.slow
DESKTOP = {"width": 1280, "height": 900}
GREETING_LINE = 53  # translations.it.greeting in bill_explainer.yaml


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The studio over copies of the storyboards and samples; yields (base URL, storyboards folder)."""
    root = tmp_path_factory.mktemp("studio-web")
    server = make_server("127.0.0.1", 0, make_app(root), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root / "storyboards"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def editor(browser, served):
    """Open a storyboard in the studio; the page records console errors, CSP refusals and failed requests."""
    base, _ = served
    context = browser.new_context(viewport=DESKTOP, extra_http_headers={"Authorization": f"Bearer {ADMIN}"})

    def open_(name: str):
        page = context.new_page()
        problems: list[str] = []
        refused = "status of 422"  # a text with problems, refused as the studio should: not a fault of the page
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" and refused not in msg.text else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and r.status != 422
                else None)
        page.problems = problems
        page.goto(f"{base}/studio/{name}")
        page.wait_for_selector("#frame-img[src^='blob:']")
        return page

    yield open_
    context.close()


def shown_frame(page) -> Image.Image:
    """The preview frame as the page shows it."""
    page.wait_for_function("() => document.getElementById('frame-img').complete")
    return Image.open(io.BytesIO(page.locator("#frame-img").screenshot())).convert("RGB")


def next_frame(page, previous: str) -> str:
    page.wait_for_function("src => document.getElementById('frame-img').src !== src", arg=previous, timeout=15000)
    return page.get_attribute("#frame-img", "src")


def caret_line(page) -> int:
    return page.evaluate("""() => { const s = document.getElementById('source');
        return s.value.slice(0, s.selectionStart).split('\\n').length; }""")


def select_text(page, needle: str) -> None:
    """Put the editor's selection on the first ``needle``, as a person would with the mouse."""
    page.evaluate("""needle => { const s = document.getElementById('source'); const at = s.value.indexOf(needle);
        s.focus(); s.setSelectionRange(at, at + needle.length); }""", needle)


def test_edit_the_greeting_see_the_frame_change_then_a_broken_line_leads_to_its_line(editor, served) -> None:
    _, boards = served
    live = (boards / "bill_explainer.yaml").read_bytes()
    page = editor("bill_explainer")
    assert page.locator("#problems-note").inner_text() == "No problems: this storyboard is ready to save."

    src = page.get_attribute("#frame-img", "src")
    page.get_by_role("button", name="greeting", exact=True).click()  # the slider jumps into the greeting scene
    src = next_frame(page, src)
    assert 3.0 < float(page.get_attribute("#frame-img", "data-time")) < 8.0
    before = shown_frame(page)

    select_text(page, "Ciao {{ first_name }},")
    page.keyboard.type("Buongiorno e benvenuta, {{ first_name }}!")
    next_frame(page, src)
    after = shown_frame(page)
    assert int((np.asarray(ImageChops.difference(before, after).convert("L")) > 40).sum()) > 500
    assert page.locator("#status").get_attribute("data-state") == "dirty"

    select_text(page, "{{ first_name }}!")
    page.keyboard.type("{{ frist_name }}!")
    problem = page.locator("#problems button[data-line]").first
    problem.wait_for(timeout=15000)
    assert problem.locator(".line").inner_text() == f"Line {GREETING_LINE}"
    assert "frist_name" in problem.inner_text()
    assert page.locator("#gutter .err").first.inner_text() == str(GREETING_LINE)
    page.wait_for_selector("#frame.stale")

    page.locator("#source").press("Control+Home")
    assert caret_line(page) == 1
    problem.click()
    assert caret_line(page) == GREETING_LINE
    assert page.evaluate("() => document.activeElement.id") == "source"
    selected = page.evaluate("() => { const s = document.getElementById('source');"
                             " return s.value.slice(s.selectionStart, s.selectionEnd); }")
    assert selected.strip().startswith("greeting:") and "frist_name" in selected
    assert page.evaluate("() => document.getElementById('source').scrollTop") > 0  # scrolled to it

    page.locator("#source").press("Control+s")  # saving a broken text keeps it as a draft
    page.wait_for_selector("#draft-banner:not([hidden])")
    assert (boards / "bill_explainer.yaml").read_bytes() == live
    assert "frist_name" in (boards / ".drafts" / "bill_explainer.yaml").read_text(encoding="utf-8")
    assert page.problems == []


def test_the_preview_video_plays_with_captions_and_its_calls_to_action(editor, served) -> None:
    page = editor("soft_reminder")
    page.get_by_role("button", name="Render preview").click()
    page.wait_for_selector("#stage:not([hidden])", timeout=60000)
    page.wait_for_function("() => { const v = document.getElementById('video');"
                           " return v.readyState >= 1 && v.textTracks.length && v.textTracks[0].cues"
                           " && v.textTracks[0].cues.length > 0; }", timeout=15000)
    ctas = page.locator("#cta-layer .cta")
    assert ctas.count() >= 1 and ctas.first.is_hidden()
    start = float(ctas.first.get_attribute("data-start"))
    page.evaluate("t => { const v = document.getElementById('video'); v.muted = true; v.currentTime = t; }",
                  start + 0.2)
    ctas.first.wait_for(state="visible", timeout=10000)
    box, frame = ctas.first.bounding_box(), page.locator("#player-frame").bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
    assert page.problems == []
