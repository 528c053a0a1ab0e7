"""The studio in a real browser: Debian's headless Chromium, driven by Playwright, against a real server.

The studio app (see ``test_studio.make_app``) runs in werkzeug's threaded
server on a free port; the admin token travels as a header on every request.
A marketing person's session: point at a text on the preview, restyle and
rewrite it, drag it, retime a scene, fill in a missing translation, upload a
logo and place it, save; and what is on disk afterwards.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
import yaml
from PIL import Image, ImageChops
from werkzeug.serving import make_server

from conftest import ROOT
from test_studio import ADMIN, make_app

pytestmark = pytest.mark.slow
AXE = os.environ.get("BILLCAST_AXE", str(ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))
DESKTOP = {"width": 1440, "height": 900}
GREETING_LINE = 53  # translations.it.greeting in bill_explainer.yaml


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The studio over copies of the storyboards and samples; yields (base URL, the app's folder)."""
    root = tmp_path_factory.mktemp("studio-web")
    server = make_server("127.0.0.1", 0, make_app(root), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()
    server.server_close()


@pytest.fixture
def editor(browser, served):
    """Open a storyboard in the studio; the page records console errors, CSP refusals and failed requests."""
    base, _ = served
    context = browser.new_context(viewport=DESKTOP, extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
    context.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                            " e => window.__csp.push(e.violatedDirective + ' ' + e.sourceFile));")

    def open_(name: str, expected: tuple[int, ...] = ()):
        page = context.new_page()
        problems: list[str] = []
        refused = ("status of 422", "status of 409", "status of 415", "status of 413")  # refusals the page shows
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" and not any(r in msg.text for r in refused) else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.status not in (422, *expected) else None)
        page.problems = problems
        page.goto(f"{base}/studio/{name}")
        page.wait_for_selector("#frame-img[src^='blob:']")
        page.wait_for_selector(".tl-scene")
        return page

    yield open_
    context.close()


def settle(page) -> None:
    """Wait until the page has no request of the studio's in flight and the preview shows the latest frame."""
    page.wait_for_load_state("networkidle")


def frame(page) -> Image.Image:
    page.wait_for_function("() => document.getElementById('frame-img').complete")
    return Image.open(io.BytesIO(page.locator("#frame-img").screenshot())).convert("RGB")


def differs(a: Image.Image, b: Image.Image) -> int:
    return int((np.asarray(ImageChops.difference(a, b).convert("L")) > 40).sum())


def at(page, box: list[float], fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    """Where on the screen a point of a storyboard box (in the storyboard's 1280x720 units) is shown."""
    stage = page.get_by_label("Preview", exact=True).bounding_box()
    k = stage["width"] / 1280
    return stage["x"] + (box[0] + box[2] * fx) * k, stage["y"] + (box[1] + box[3] * fy) * k


def billcast_check(path, assets) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "billcast.cli", "--assets", str(assets), "check", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_marketing_session_point_edit_drag_retime_translate_place_a_logo_and_save(editor, served, tmp_path) -> None:
    _, root = served
    boards = root / "storyboards"
    original = (boards / "bill_explainer.yaml").read_text(encoding="utf-8")
    missing = original.replace("    breakdown: Come si compone la bolletta\n", "")  # a text not yet in Italian
    (boards / "bill_explainer.yaml").write_text(missing, encoding="utf-8")
    page = editor("bill_explainer", expected=(415,))
    props = page.get_by_role("region", name="Properties")

    # Point: the intro's tagline, clicked on the preview, is what the properties panel shows.
    page.get_by_role("button", name="intro", exact=False).first.click()
    settle(page)
    before = frame(page)
    page.mouse.click(*at(page, [140, 430, 1000, 70]))
    expect_text = props.get_by_label("Text (it)")
    expect_text.wait_for()
    assert expect_text.input_value() == "La tua bolletta, spiegata in 30 secondi"
    assert props.get_by_label("X", exact=True).input_value() == "140"
    assert page.locator(".layer.is-selected .layer-name").inner_text() == "tagline"

    # Restyle and rewrite it.
    props.get_by_role("button", name="amber", exact=True).click()
    page.wait_for_function("() => document.querySelector('[data-field=\"scenes[0].layers[2].color\"] input').value === 'amber'")
    expect_text.fill("Tutta la bolletta, in breve")
    expect_text.blur()
    page.wait_for_function("() => document.querySelector('.status').dataset.state === 'dirty'")
    settle(page)
    assert differs(before, frame(page)) > 300

    # A value the check refuses is refused at its field, with the check's words.
    size = props.get_by_label("Size", exact=True)
    size.fill("-3")
    size.press("Enter")
    error = props.locator("[data-field='scenes[0].layers[2].font.size'] .prop-error")
    error.wait_for(state="visible")
    assert "greater than 0" in error.inner_text() and size.input_value() == "40"

    # Drag it 40 px right (Alt: no snapping).
    stage = page.get_by_label("Preview", exact=True).bounding_box()
    x, y = at(page, [140, 430, 1000, 70])
    page.keyboard.down("Alt")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 20, y, steps=4)
    page.mouse.move(x + 40, y, steps=4)
    page.mouse.up()
    page.keyboard.up("Alt")
    moved_x = 140 + round(40 * 1280 / stage["width"])
    page.wait_for_function(f"() => document.querySelector('[data-field=\"scenes[0].layers[2].box[0]\"] input').value === '{moved_x}'")

    # Arrow keys nudge it, Shift by 10.
    page.get_by_label("Preview", exact=True).focus()
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector('[data-field=\"scenes[0].layers[2].box[0]\"] input').value === '{moved_x - 9}'")
    moved_x -= 9

    # Retime the greeting scene by dragging the end of its block on the timeline.
    settle(page)
    grip = page.locator(".tl-scene").nth(1).locator(".tl-resize")
    grip.wait_for()
    handle = grip.bounding_box()
    track = page.locator(".tl-scenes").bounding_box()
    per_second = track["width"] / 30
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(hx + per_second, hy, steps=5)
    page.mouse.up()
    page.wait_for_function("() => document.querySelectorAll('.tl-scene-length')[1].textContent.trim() !== '4.0 s'")
    settle(page)
    retimed = float(page.locator(".tl-scene-length").nth(1).inner_text().split()[0])
    assert 4.6 <= retimed <= 5.4

    # Fill the missing translation in the grid.
    page.get_by_role("tab", name="Translations").click()
    cell = page.get_by_label("breakdown (it)")
    cell.wait_for()
    assert cell.input_value() == "" and "missing" in cell.locator("xpath=..").inner_text().lower()
    cell.fill("Le voci della bolletta")
    cell.press("Enter")
    page.wait_for_function("() => !document.querySelector('input[aria-label=\"breakdown (it)\"]').closest('td').classList.contains('is-missing')")
    assert page.get_by_label("tagline (it)").input_value() == "Tutta la bolletta, in breve"
    page.get_by_role("tab", name="Design").click()

    # Upload a PNG logo and place it; a renamed executable posing as a PNG is refused.
    page.get_by_role("tab", name="Assets").click()
    logo = tmp_path / "partner-logo.png"
    Image.new("RGBA", (300, 100), (14, 77, 100, 255)).save(logo)
    evil = tmp_path / "evil.png"
    evil.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(2048))
    uploader = page.locator("#side-assets input[type=file]")
    uploader.set_input_files(str(evil))
    status = page.locator(".asset-status")
    page.wait_for_function("() => document.querySelector('.asset-status').textContent.includes('refused')")
    assert "content was checked" in status.inner_text()
    uploader.set_input_files(str(logo))
    page.wait_for_function("() => document.querySelector('.asset-status').textContent.includes('images/partner-logo.png')")
    page.get_by_role("button", name="Place partner-logo.png in the scene").click()
    page.wait_for_function("() => document.querySelector('.props-title').textContent.includes('partner-logo.png')")
    settle(page)

    # Save: every change is on disk, the comments are all there, and billcast check agrees.
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_function("() => document.querySelector('.status').dataset.state === 'saved'")
    saved = (boards / "bill_explainer.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(saved)
    tagline = data["scenes"][0]["layers"][2]
    assert tagline["color"] == "amber" and tagline["box"] == [moved_x, 430, 1000, 70]
    assert data["translations"]["it"]["tagline"] == "Tutta la bolletta, in breve"
    assert data["translations"]["it"]["breakdown"] == "Le voci della bolletta"
    assert list(data["translations"]["it"]).index("breakdown") == list(data["translations"]["en"]).index("breakdown")
    assert data["scenes"][1]["duration"] == retimed
    placed = data["scenes"][0]["layers"][-1]
    assert placed["kind"] == "image" and placed["src"] == "images/partner-logo.png"
    assert (root / "assets" / "images" / "partner-logo.png").is_file() and not (root / "assets" / "images" / "evil.png").exists()
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in saved.splitlines() if line.lstrip().startswith("#")] == comments
    checked = billcast_check(boards / "bill_explainer.yaml", root / "assets")  # the studio's assets: the new logo
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert page.problems == [] and page.evaluate("() => window.__csp") == []


def test_undo_and_redo_walk_back_through_visual_edits(editor) -> None:
    page = editor("soft_reminder")
    props = page.get_by_role("region", name="Properties")
    page.locator(".layer-item[data-layer]").first.click()
    opacity = props.get_by_label("Opacity (0–1)")
    opacity.fill("0.5")
    opacity.press("Enter")
    page.wait_for_function("() => !document.getElementById('undo').disabled")
    page.get_by_role("button", name="Undo").click()
    page.wait_for_function("() => document.querySelector('[data-field$=\"opacity\"] input').value === '1'")
    page.get_by_role("button", name="Redo").click()
    page.wait_for_function("() => document.querySelector('[data-field$=\"opacity\"] input').value === '0.5'")
    assert page.problems == []


def test_a_save_over_someone_elses_is_refused_and_nothing_is_lost(editor, served) -> None:
    _, root = served
    live = root / "storyboards" / "firm_reminder.yaml"
    page = editor("firm_reminder", expected=(409,))
    page.locator(".layer-item[data-layer]").first.click()
    props = page.get_by_role("region", name="Properties")
    props.get_by_label("X", exact=True).fill("33")
    props.get_by_label("X", exact=True).press("Enter")
    page.wait_for_function("() => document.querySelector('.status').dataset.state === 'dirty'")
    theirs = live.read_text(encoding="utf-8").replace("fps: 25", "fps: 24")
    live.write_text(theirs, encoding="utf-8")  # someone else saved in between
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#conflict-banner").wait_for(state="visible")
    assert live.read_text(encoding="utf-8") == theirs
    assert props.get_by_label("X", exact=True).input_value() == "33"  # my change is still here
    page.get_by_role("button", name="Save mine anyway").click()
    page.wait_for_function("() => document.querySelector('.status').dataset.state === 'saved'")
    assert "box: [33," in live.read_text(encoding="utf-8")


def test_the_code_view_checks_as_you_type_and_a_problem_leads_to_its_line(editor, served) -> None:
    _, root = served
    live = (root / "storyboards" / "soft_reminder_b.yaml").read_bytes()
    page = editor("soft_reminder_b")
    page.get_by_role("tab", name="Code").click()
    content = page.locator(".cm-content")
    content.wait_for()
    line = page.locator(".cm-line", has_text="greeting: \"{{ first_name }}").first
    line.click()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")  # the line, from after its indentation
    page.keyboard.insert_text('greeting: "{{ frist_name }}, still due."')
    page.locator("[data-drawer=problems]").wait_for(state="visible", timeout=15000)
    page.locator("[data-drawer=problems]").click()
    problem = page.locator("#problems button[data-line]").first
    assert "frist_name" in problem.inner_text()
    number = int(problem.get_attribute("data-line"))
    page.wait_for_selector(".cm-lint-marker-error")
    content.press("Control+Home")
    problem.click()
    assert int(page.locator(".cm-lineNumbers .cm-activeLineGutter").inner_text()) == number
    page.keyboard.press("Control+s")  # a broken text is kept as the draft
    page.wait_for_selector("#draft-banner:not([hidden])")
    assert (root / "storyboards" / "soft_reminder_b.yaml").read_bytes() == live
    assert page.problems == []


def test_the_code_view_completes_keys_from_the_schema(editor) -> None:
    page = editor("bill_explainer")
    page.get_by_role("tab", name="Code").click()
    line = page.locator(".cm-line", has_text="fps: 25").first
    line.click()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("mirr")
    option = page.locator(".cm-tooltip-autocomplete li", has_text="mirror_rtl")
    option.click()  # (Enter right as the list opens is ignored on purpose: it would swallow a typed newline)
    assert "mirror_rtl: " in page.locator(".cm-activeLine").inner_text()


def test_the_preview_video_plays_with_captions_and_its_calls_to_action(editor) -> None:
    page = editor("soft_reminder")
    page.get_by_role("button", name="Preview video").click()
    page.get_by_role("button", name="Render preview").click()
    page.wait_for_selector("#player:not([hidden])", timeout=60000)
    page.wait_for_function("() => { const v = document.getElementById('video');"
                           " return v.readyState >= 1 && v.textTracks.length && v.textTracks[0].cues"
                           " && v.textTracks[0].cues.length > 0; }", timeout=15000)
    ctas = page.locator("#cta-layer .cta")
    assert ctas.count() >= 1 and ctas.first.is_hidden()
    start = float(ctas.first.get_attribute("data-start"))
    page.evaluate("t => { const v = document.getElementById('video'); v.muted = true; v.currentTime = t; }",
                  start + 0.2)
    ctas.first.wait_for(state="visible", timeout=10000)
    box, frame_box = ctas.first.bounding_box(), page.locator("#player-frame").bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    assert frame_box["x"] <= box["x"] and box["x"] + box["width"] <= frame_box["x"] + frame_box["width"]
    assert page.problems == []


def test_keyboard_users_select_layers_from_the_list_and_the_list_page_starts_a_new_storyboard(browser, served) -> None:
    base, root = served
    context = browser.new_context(viewport=DESKTOP, extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
    page = context.new_page()
    page.goto(f"{base}/studio/")
    page.get_by_role("button", name="New storyboard").click()
    page.get_by_label("Name").fill("spring_promo")
    page.get_by_role("radio", name=re.compile(r"^blank\b")).check()
    page.get_by_role("button", name="Create and open").click()
    page.wait_for_url(f"{base}/studio/spring_promo")
    page.wait_for_selector(".layer-item[data-layer]")
    first = page.locator(".layer-item[data-layer]").first  # the topmost: the subline
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.props-title').textContent.startsWith('Text')")
    assert page.locator(".props-title").inner_text() == "Text · subline"
    page.keyboard.press("Tab")  # on to the layer's own buttons, then to the next layer
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.props-title').textContent === 'Text · headline'")
    assert (root / "storyboards" / "spring_promo.yaml").is_file()
    context.close()


@pytest.mark.parametrize("path,view", [("/studio/", None), ("/studio/bill_explainer", "Design"),
                                       ("/studio/bill_explainer", "Translations"), ("/studio/bill_explainer", "Code")])
def test_axe_finds_no_serious_or_critical_violation(browser, served, path, view) -> None:
    base, _ = served
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True,  # only so that axe itself can be injected
                                  extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
    page = context.new_page()
    page.goto(base + path)
    if view:
        page.wait_for_selector(".tl-scene")
        page.get_by_role("tab", name=view).click()
        if view == "Design":
            page.locator(".layer-item[data-layer]").first.click()
            page.locator(".props-body .prop").first.wait_for()
        if view == "Translations":
            page.get_by_label("tagline (it)").wait_for()
        if view == "Code":
            page.locator(".cm-content").wait_for()
    page.add_script_tag(path=AXE)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    context.close()
