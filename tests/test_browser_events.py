"""The page's engagement beacons in a real browser: Debian's headless Chromium driven by Playwright.

A tiny rendered video (160x90, 5 fps) and its page are built into a folder and
served as static files on one origin (the public one); the real service app
takes the beacons on another (the pay origin), so the beacons cross origins
under the page's CSP, as in production.
The browser plays the video to the end at 16x and pays; the ledger must then
hold view, play, progress 25..100 and pay_click, and nothing the browser sent
may carry personal data. Every beacon of a tab carries the same random session
id, kept over a reload; a second visit from the same browser adds only its clicks.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from flask import Flask, send_from_directory
from werkzeug.serving import make_server

from billcast.jobs import amount_due, parse_record, record_values
from billcast.jobs.ledger import Ledger
from billcast.microsite import SiteSettings, build_site, read_video, write_site
from billcast.renderer import load_storyboard, plan, render

from conftest import LINKS, ROOT, sample
from test_events import publish, service_app, settings_for, write_campaign
from test_reports import ADMIN, fill

pytestmark = pytest.mark.slow
CUSTOMER = "IT-000124"  # in arrears: pay buttons on the page, a pay CTA at the end of the video
TOKEN = "BrowserT0ken_012345678"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
AXE = Path(os.environ.get("BILLCAST_AXE", ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))


def static_pages(folder: Path) -> Flask:
    """What a bucket or CDN does for the public origin: files as they are, with byte ranges for the video."""
    app = Flask("pages")

    @app.get("/r/<path:path>")
    def page(path: str):
        return send_from_directory(folder, path + "index.html" if path.endswith("/") else path)

    return app


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build one page and serve it and the service; yields (campaign, page URL, pay origin)."""
    root = tmp_path_factory.mktemp("events-web")
    apps: dict = {"pages": static_pages(root / "pages")}
    servers = {name: make_server("127.0.0.1", 0, lambda env, start, name=name: apps[name](env, start), threaded=True)
               for name in ("pages", "service")}
    public, pay = (f"http://127.0.0.1:{servers[name].server_port}" for name in ("pages", "service"))
    campaign = write_campaign(root / "campaign", "web-2026-11", public_url=public, pay_url=pay)

    record = parse_record(sample(CUSTOMER))
    board = load_storyboard(ROOT / "storyboards" / "firm_reminder.yaml")
    render(plan(board, record_values(record), LINKS, size=(160, 90), fps=5), root / "render")
    page = build_site(record_values(record), read_video(root / "render"), token=TOKEN, amount_due=amount_due(record),
                      settings=SiteSettings(pay_url=pay, public_url=public))
    write_site(page, root / "pages" / TOKEN)
    with Ledger(campaign.ledger) as ledger:
        ledger.ensure_campaign(campaign.id, link_days=60)
        publish(ledger, campaign.id, CUSTOMER, TOKEN, storyboard="firm_reminder", amount_due=str(amount_due(record)))

    apps["service"] = service_app(settings_for(campaign))
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield campaign, f"{public}/r/{TOKEN}/", pay
    for server in servers.values():
        server.shutdown()
        server.server_close()
    apps["service"].extensions["billcast"].close()


@pytest.fixture
def visit(browser, site):
    """Open the page on a phone; returns the page, with ``beacons`` (what the browser sent) and ``problems``."""
    campaign, url, pay = site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.beacons, page.problems = [], []
    page.on("request", lambda r: page.beacons.append(r) if "/e/" in r.url else None)
    page.on("console", lambda m: page.problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # The pay endpoint is another part's; here it answers with a stand-in page.
    page.route(f"{pay}/pay/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<!DOCTYPE html><title>Pay</title><p>Payment page"))
    page.since = len(stored(campaign))  # the events earlier tests left
    page.goto(url)
    page.wait_for_load_state("load")
    yield page
    context.close()


def stored(campaign, count: int = 0, since: int = 0, timeout: float = 10.0) -> list[tuple[str, int | None]]:
    """The campaign's events after the first ``since``, once ``count`` of them have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        with Ledger(campaign.ledger) as ledger:
            events = [(e["kind"], e["value"]) for e in ledger.events(campaign.id)][since:]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def play_to_the_end(page) -> None:
    page.evaluate("() => { const v = document.getElementById('bill-video'); v.muted = true; v.playbackRate = 16; }")
    page.locator('[data-act="play"]').click()
    page.wait_for_function("() => document.getElementById('bill-video').ended", timeout=15000)


def sent(page) -> list[dict]:
    return [json.loads(request.post_data) for request in page.beacons]


def test_view_play_progress_and_pay_reach_the_ledger_in_order_without_personal_data(site, visit) -> None:
    campaign, _, pay = site
    page = visit
    play_to_the_end(page)
    assert page.problems == []  # the beacons crossed origins under the page's CSP without a complaint
    page.get_by_role("link", name="Paga tutto ora").click()
    page.wait_for_url("**/pay/**")
    expected = [("view", None), ("play", None), ("progress", 25), ("progress", 50), ("progress", 75),
                ("progress", 100), ("pay_click", None)]
    assert [(b["kind"], b.get("value")) for b in sent(page)] == expected  # sent in this order
    session = sent(page)[0]["s"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", session) and {b["s"] for b in sent(page)} == {session}
    assert sent(page)[-1] == {"kind": "pay_click", "src": "site", "s": session}
    events = stored(campaign, len(expected), since=page.since)
    assert sorted(events, key=repr) == sorted(expected, key=repr)  # each arrived once (threads may reorder)
    assert events[0] == ("view", None) and events[-1] == ("pay_click", None)

    record = sample(CUSTOMER)
    personal = [record["first_name"], record["last_name"], record["customer_id"], record["email"],
                record["postcode"], str(record["debt"]["overdue_total"])]
    for request in page.beacons:
        assert request.method == "POST" and request.url == f"{pay}/e/{TOKEN}"
        assert set(json.loads(request.post_data)) <= {"kind", "value", "src", "s"}
        assert not any(p in request.post_data or p in request.url for p in personal)
        headers = request.all_headers()
        assert "referer" not in headers and "cookie" not in headers
        assert headers["content-type"].startswith("text/plain")  # a simple request: no preflight


def test_the_call_to_action_over_the_video_is_a_cta_click_from_the_video(site, visit) -> None:
    campaign, _, _ = site
    page = visit
    play_to_the_end(page)
    page.locator(".cta").first.click()  # shown at the end, over the button the video draws
    page.wait_for_url("**/pay/**")
    assert sent(page)[-1] == {"kind": "cta_click", "src": "video", "s": sent(page)[0]["s"]}
    assert [b["kind"] for b in sent(page)].count("progress") == 4  # each mark once, however often timeupdate fired
    # The same browser (address and User-Agent) on the same day: its view, play and marks were counted already.
    assert stored(campaign, 1, since=page.since) == [("cta_click", None)]


def test_a_reload_keeps_the_session_id_and_counts_nothing_again(site, visit) -> None:
    campaign, url, _ = site
    page = visit
    first = page.evaluate("() => sessionStorage.getItem('billcast-beacon-session')")
    page.reload()
    page.wait_for_load_state("load")
    views = [b for b in sent(page) if b["kind"] == "view"]
    assert len(views) == 2 and {b["s"] for b in views} == {first}
    other = page.context.browser.new_context(viewport=PHONE)   # another tab's storage: another id
    try:
        tab = other.new_page()
        tab.goto(url)
        assert tab.evaluate("() => sessionStorage.getItem('billcast-beacon-session')") not in (None, first)
    finally:
        other.close()
    time.sleep(0.5)
    assert stored(campaign, since=page.since) == []


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The service, with the ledger tests/test_reports.py counts, behind its test client; yields (client, campaign)."""
    campaign = write_campaign(tmp_path_factory.mktemp("reports"), "rep-2026-11")
    with Ledger(campaign.ledger) as ledger:
        fill(ledger)
    app = service_app(settings_for(campaign, admin_token=ADMIN))
    yield app.test_client(), campaign
    app.extensions["billcast"].close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_report_page_has_no_accessibility_violation_and_fits_a_phone(browser, reports, viewport) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs axe-core")
    client, campaign = reports

    def answer(route):  # the app through its test client: no server needed
        response = client.get(route.request.url.removeprefix("http://reports.test"),
                              headers={"Authorization": f"Bearer {ADMIN}"})
        route.fulfill(status=response.status_code, headers=dict(response.headers), body=response.data)

    context = browser.new_context(viewport=viewport, bypass_csp=True)  # to let axe in; the page has no script
    page = context.new_page()
    page.route("http://reports.test/**", answer)
    page.goto(f"http://reports.test/reports/{campaign.id}")
    assert page.locator("svg.chart").count() == 6
    page.add_script_tag(path=AXE)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]] == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    context.close()
