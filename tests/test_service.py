"""The service's frame: local serving of the store with a CDN's headers, the admin sign-in, the settings."""

from __future__ import annotations

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.jobs.links import recipient_token
from billcast.jobs.run import run_campaign
from billcast.service import create_app
from billcast.settings import load_settings, service_settings

from test_campaign_run import SECRET, good_records, write_campaign

pytestmark = pytest.mark.slow
ADMIN = "admin-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    path = write_campaign(folder, good_records()[:2])
    campaign = load_campaign(path)
    counts = run_campaign(campaign, secret=SECRET.encode(), workers=1)
    assert counts.published == 2
    return campaign


def app_for(campaign, tmp_path, **environ):
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "keep"), **environ})
    app = create_app(service_settings(settings, (campaign,)))
    app.testing = True
    return app


@pytest.fixture
def client(campaign, tmp_path):
    return app_for(campaign, tmp_path, BILLCAST_ADMIN_TOKEN=ADMIN).test_client()


def token(customer_id: str) -> str:
    return recipient_token(SECRET.encode(), "test-2026-11", customer_id)


def test_a_page_is_served_with_a_cdns_headers(client) -> None:
    t = token(good_records()[0]["customer_id"])
    response = client.get(f"/r/{t}/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert client.get(f"/r/{t}").status_code == 308
    assert client.head(f"/r/{t}/").status_code == 200


def test_video_is_served_in_ranges_and_static_files_are_immutable(client) -> None:
    t = token(good_records()[0]["customer_id"])
    page = client.get(f"/r/{t}/").get_data(as_text=True)
    import re

    video = re.search(r'src="(m/[0-9a-f]+/video\.mp4)"', page).group(1)
    whole = client.get(f"/r/{t}/{video}")
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "video/mp4"
    assert "immutable" in whole.headers["Cache-Control"] and whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(f"/r/{t}/{video}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    script = re.search(r'src="\.\./\.\./(static/[0-9a-f]+/site\.js)"', page).group(1)
    response = client.get(f"/{script}")
    assert response.status_code == 200 and "javascript" in response.headers["Content-Type"]
    assert "immutable" in response.headers["Cache-Control"]
    font = client.get(f"/r/{t}/" + re.search(r'url\("(m/[0-9a-f]+/fonts/[^"]+\.woff2)"\)', page).group(1))
    assert font.status_code == 200 and font.headers["Content-Type"] == "font/woff2"
    assert "immutable" in font.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/r/AAAAAAAAAAAAAAAAAAAAAA/", "/r/", "/.billcast-meta/static", "/nothing.html",
                                  "/r/%2e%2e/ledger.db", "/../ledger.db"])
def test_anything_else_is_404(client, path) -> None:
    assert client.get(path).status_code == 404


def test_reports_need_the_admin_token(client) -> None:
    assert client.get("/reports/").status_code == 401
    browser = client.get("/reports/", headers={"Accept": "text/html"})
    assert browser.status_code == 302 and "/signin" in browser.headers["Location"]
    assert client.get("/reports/", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
    assert client.get("/reports/", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_signing_in_once_sets_a_strict_session_cookie(client) -> None:
    assert client.post("/signin", data={"token": "wrong", "next": "/reports/"}).status_code == 401
    response = client.post("/signin", data={"token": ADMIN, "next": "/reports/"})
    assert response.status_code == 303 and response.headers["Location"] == "/reports/"
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/reports/").status_code == 200
    assert client.post("/signout").status_code == 303
    assert client.get("/reports/").status_code == 401
    elsewhere = client.post("/signin", data={"token": ADMIN, "next": "//evil.example/"})
    assert elsewhere.headers["Location"] == "/"


def test_without_an_admin_token_reports_are_off(campaign, tmp_path) -> None:
    client = app_for(campaign, tmp_path).test_client()
    response = client.get("/reports/", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503 and "BILLCAST_ADMIN_TOKEN" in response.get_data(as_text=True)
