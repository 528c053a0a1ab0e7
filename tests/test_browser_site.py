"""The page in a real browser: Debian's headless Chromium driven by Playwright, axe-core for accessibility.

Two tiny videos are rendered once (160x90, 5 fps): an Italian customer in
arrears (firm reminder, one pay CTA) and an Arabic one (soft reminder, a plan
CTA then a pay CTA). Their pages are served with a pay endpoint by a local HTTP
server in a thread; the pay endpoint records what it was asked. Each page is
also drawn once with its font subsets and once with the whole fonts served in
their place: the two screenshots must be the same, pixel for pixel.
"""

from __future__ import annotations

import io
import os
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image, ImageChops

from billcast.jobs import amount_due, parse_record, record_values
from billcast.microsite import Disclosure, SiteSettings, build_site, read_video, static_dir, write_site
from billcast.renderer import load_storyboard, plan, render

from conftest import LINKS, ROOT, sample

pytestmark = pytest.mark.slow
AXE = Path(os.environ.get("BILLCAST_AXE", ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))
PAGES = {  # key: (customer, storyboard, token)
    "it": ("IT-000124", "firm_reminder", "ItPageT0ken_0123456789"),
    "ar": ("EG-000790", "soft_reminder", "ArPageT0ken_0123456789"),
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


class Handler(SimpleHTTPRequestHandler):
    """Serves the pages (with byte ranges, as a video needs), axe.min.js, and a pay endpoint that records calls."""

    paid: list[tuple[str, dict[str, list[str]]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
        parts = urlsplit(self.path)
        if parts.path.startswith("/pay/"):
            self.paid.append((parts.path, parse_qs(parts.query)))
            self._reply(b'<!DOCTYPE html><title>Pay</title><link rel="icon" href="data:,"><p>Payment page', "text/html")
        elif parts.path == "/axe.min.js":
            self._reply(AXE.read_bytes(), "text/javascript")
        elif "range" in self.headers and Path(self.translate_path(parts.path)).is_file():
            self._range(Path(self.translate_path(parts.path)))
        else:
            super().do_GET()

    def do_POST(self) -> None:  # noqa: N802 (the http.server spelling)
        """The pages' engagement beacons (checked in tests/test_browser_events.py): taken and dropped."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def _reply(self, body: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _range(self, path: Path) -> None:
        data = path.read_bytes()
        first, _, last = self.headers["range"].removeprefix("bytes=").partition("-")
        start, end = int(first or 0), min(int(last) if last else len(data) - 1, len(data) - 1)
        self._reply(data[start:end + 1], self.guess_type(str(path)), HTTPStatus.PARTIAL_CONTENT,
                    {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Render, build and serve both pages; yields the base URL."""
    root = tmp_path_factory.mktemp("web")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Handler(*a, directory=str(root)))
    base = f"http://127.0.0.1:{httpd.server_port}"
    for customer, storyboard, token in PAGES.values():
        board = load_storyboard(ROOT / "storyboards" / f"{storyboard}.yaml")
        record = parse_record(sample(customer))
        video_dir = tmp_path_factory.mktemp(customer) / "render"
        render(plan(board, record_values(record), LINKS, size=(160, 90), fps=5), video_dir)
        settings = SiteSettings(pay_url=base, public_url=base, disclosure=Disclosure.from_translations(
            board.model.translations, board.model.default_language))
        site = build_site(record_values(record), read_video(video_dir), token=token, amount_due=amount_due(record),
                          settings=settings)
        write_site(site, root / "r" / token)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def open_page(browser, server):
    contexts = []

    def open_(key: str, viewport: dict = PHONE, **options):
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.problems = problems
        page.goto(f"{server}/r/{PAGES[key][2]}/")
        page.wait_for_load_state("load")
        return page

    yield open_
    for context in contexts:
        context.close()


def seek_to_cta(page, index: int = -1) -> dict:
    """Play the video from just before a call to action until its overlay shows; returns the overlay's box."""
    start = float(page.locator(".cta").nth(index).get_attribute("data-start"))
    page.locator('[data-act="mute"]').click()
    page.evaluate("t => { const v = document.getElementById('bill-video'); v.currentTime = t; }", max(start - 0.6, 0))
    page.locator('[data-act="play"]').click()
    overlay = page.locator(".cta").nth(index)
    overlay.wait_for(state="visible", timeout=15000)
    assert page.evaluate("() => document.getElementById('bill-video').currentTime") >= start  # got there by playing
    page.evaluate("() => document.getElementById('bill-video').pause()")  # keep the overlay up for the test
    overlay.wait_for(state="visible")
    return overlay.bounding_box()


def test_playing_to_the_cta_shows_it_and_clicking_it_pays_from_the_video(open_page) -> None:
    page = open_page("it")
    Handler.paid.clear()
    assert page.locator(".cta").first.is_hidden()
    box = seek_to_cta(page)
    assert box["width"] >= 44 and box["height"] >= 44
    page.locator(".cta").first.click()
    page.wait_for_url("**/pay/**")
    token = PAGES["it"][2]
    assert Handler.paid == [(f"/pay/{token}", {"option": ["full"], "src": ["video"]})]
    assert urlsplit(page.url).query == "option=full&src=video"
    assert page.problems == []  # no CSP refusals, no script errors, nothing missing


def test_the_overlay_is_reachable_by_keyboard_on_the_arabic_page(open_page) -> None:
    page = open_page("ar")
    Handler.paid.clear()
    seek_to_cta(page, index=0)  # the plan CTA
    page.locator('[data-act="play"]').focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('cta')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/pay/**")
    assert Handler.paid == [(f"/pay/{PAGES['ar'][2]}", {"option": ["plan"], "src": ["video"]})]


def test_arabic_page_is_right_to_left_with_its_controls_and_overlays(open_page) -> None:
    page = open_page("ar", DESKTOP)
    directions = page.evaluate("""() => [document.documentElement, document.querySelector('.controls'),
        document.querySelector('.pay-card')].map(el => getComputedStyle(el).direction)""")
    assert directions == ["rtl", "rtl", "rtl"]
    play = page.locator('[data-act="play"]').bounding_box()
    full = page.locator('[data-act="fullscreen"]').bounding_box()
    assert play["x"] > full["x"], "play should be at the right end of a right-to-left control bar"
    stage = page.locator(".frame").bounding_box()
    box = seek_to_cta(page)
    assert box["x"] + box["width"] / 2 > stage["x"] + stage["width"] / 2, "the pay CTA is drawn mirrored"


def test_italian_overlay_sits_over_the_button_drawn_in_the_video(open_page) -> None:
    page = open_page("it", DESKTOP)
    stage = page.locator(".frame").bounding_box()
    box = seek_to_cta(page)
    center_x = (box["x"] + box["width"] / 2 - stage["x"]) / stage["width"]
    center_y = (box["y"] + box["height"] / 2 - stage["y"]) / stage["height"]
    assert abs(center_x - (80 + 230) / 1280) < 0.02 and abs(center_y - (250 + 48) / 720) < 0.02


@pytest.mark.parametrize("key", ["it", "ar"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_axe_finds_no_serious_or_critical_violation(open_page, server, key, viewport) -> None:
    page = open_page(key, viewport)
    page.evaluate("document.fonts.ready")
    page.add_script_tag(url=f"{server}/axe.min.js")  # same origin: the page's CSP allows it
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert result["testEngine"]["version"].startswith("4.")


def test_buttons_are_at_least_44_px_and_the_page_fits_a_phone(open_page) -> None:
    page = open_page("it")
    sizes = page.evaluate("""() => [...document.querySelectorAll('.button, .ctl, .footer a, .seek')]
        .map(el => el.getBoundingClientRect()).map(r => [r.width, r.height])""")
    assert sizes and all(w >= 44 and h >= 44 for w, h in sizes), sizes
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def test_page_works_without_javascript(open_page) -> None:
    page = open_page("it", java_script_enabled=False)
    assert page.locator("video").get_attribute("controls") is not None
    assert page.locator(".controls").is_hidden() and page.locator(".cta").first.is_hidden()
    pay = page.get_by_role("link", name="Paga tutto ora")
    assert pay.is_visible() and pay.get_attribute("href").endswith("option=full&src=site")
    assert page.get_by_role("heading", level=1).inner_text() == "Ciao Giuseppe,"


def test_captions_fonts_and_poster_load_under_the_csp(open_page) -> None:
    page = open_page("it")
    page.evaluate("document.fonts.ready")
    page.wait_for_function("() => { const t = document.getElementById('bill-video').textTracks[0];"
                           " return t && t.cues && t.cues.length > 0; }", timeout=10000)
    assert page.evaluate("() => document.fonts.check('700 16px \"Noto Sans\"')")
    assert page.evaluate("() => [...document.fonts].some(f => f.family.includes('Noto Sans') && f.status === 'loaded')")
    assert page.problems == []


def test_the_qr_code_on_the_page_scans_to_the_pay_link(open_page, server) -> None:
    page = open_page("it", DESKTOP)
    png = page.locator("svg.qr").screenshot()
    found = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
    assert found == [f"{server}/pay/{PAGES['it'][2]}?option=full&src=qr"]


def whole_font(url: str) -> bytes:
    """The packaged font a subset was cut from (``NotoSansArabic-Bold-<hash>.woff2``: ``NotoSansArabic-Bold.ttf``)."""
    return (static_dir() / "fonts" / (url.rsplit("/", 1)[1].rsplit("-", 1)[0] + ".ttf")).read_bytes()


def full_page(browser, url: str, *, whole_fonts: bool) -> tuple[Image.Image, int]:
    """A full-page screenshot at phone size once every font is in, and how many font requests were answered."""
    context = browser.new_context(viewport=PHONE)
    fonts = []
    if whole_fonts:
        context.route("**/*.woff2", lambda route: (fonts.append(route.request.url),
                                                   route.fulfill(body=whole_font(route.request.url))))
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_load_state("load")
        page.evaluate("document.fonts.ready")
        assert page.evaluate("() => [...document.fonts].every(f => f.status === 'loaded')")
        return Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB"), len(fonts)
    finally:
        context.close()


@pytest.mark.parametrize("key", ["it", "ar"])
def test_the_page_draws_with_its_font_subsets_exactly_as_with_the_whole_fonts(browser, server, key) -> None:
    url = f"{server}/r/{PAGES[key][2]}/"
    cut, _ = full_page(browser, url, whole_fonts=False)
    whole, swapped = full_page(browser, url, whole_fonts=True)
    assert swapped == (4 if key == "ar" else 2)  # every subset was replaced by its whole font
    assert cut.size == whole.size
    assert ImageChops.difference(cut, whole).getbbox() is None, "the subsets draw the page differently"


def test_nothing_of_the_video_loads_until_it_is_played(open_page) -> None:
    page = open_page("it")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    page.wait_for_timeout(500)
    first = [path for path in page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")]
    assert not any(path.endswith("video.mp4") for path in first + asked)
    assert any(path.endswith("poster.jpg") for path in first)
    page.locator('[data-act="mute"]').click()
    page.locator('[data-act="play"]').click()
    page.wait_for_function("() => document.getElementById('bill-video').currentTime > 0", timeout=15000)
    assert any(path.endswith("video.mp4") for path in asked)
