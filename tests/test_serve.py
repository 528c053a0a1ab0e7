"""``billcast serve`` in production shape: gunicorn with several workers, health, errors, limits, proxies.

The real server runs in a child process on a free loopback port. Two servers on
one campaign stand for two hosts behind a load balancer: whatever one process
does, the other must understand (sessions, the demo's signed webhook, the
beacons' rate limit).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from flask import Flask, abort

from billcast.cli import parser
from billcast.jobs.campaign import load_campaign
from billcast.service import create_app
from billcast.settings import load_settings, service_settings

from served import ADMIN, Served, published_campaign, token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory) -> Path:
    return published_campaign(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def servers(campaign_file, tmp_path_factory):
    """Two servers (two hosts) of two workers each, sharing the campaign and the kept session secret."""
    folder = tmp_path_factory.mktemp("servers")
    env = {"BILLCAST_ADMIN_TOKEN": ADMIN, "BILLCAST_STATE_DIR": str(folder / "state"),
           "BILLCAST_EVENTS_PER_MINUTE": "6"}
    argv = ["billcast", "serve", str(campaign_file), "--workers", "2", "--insecure-cookies"]
    with Served(argv, env, folder) as one, Served(argv, env, folder) as two:
        yield one, two


def test_health_answers_small_json_without_secrets(servers) -> None:
    one, _ = servers
    health = one.request("GET", "/healthz")
    assert health.status == 200 and json.loads(health.body) == {"status": "ok"}
    assert health.headers["content-type"] == "application/json"
    ready = one.request("GET", "/readyz")
    assert ready.status == 200
    assert json.loads(ready.body) == {"status": "ok", "checks": {"ledger": "ok", "migrations": "ok", "store": "ok"}}
    for secret in ("sqlite", "file://", "store", ADMIN):
        assert secret not in ready.text.replace('"store"', "")
    assert "gunicorn" in one.log and "Booting worker" in one.log


def test_a_session_made_on_one_host_is_good_on_the_other(servers) -> None:
    one, two = servers
    signed = one.request("POST", "/signin", f"token={ADMIN}&next=/reports/".encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"})
    assert signed.status == 303
    cookie = signed.headers["set-cookie"].split(";")[0]
    for server in (one, two) * 3:
        assert server.request("GET", "/reports/", headers={"Cookie": cookie}).status == 200


def test_signing_out_on_one_host_ends_the_session_on_every_worker_of_both(servers) -> None:
    one, two = servers
    signed = one.request("POST", "/signin", f"token={ADMIN}&next=/reports/".encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = signed.headers["set-cookie"].split(";")[0]
    assert two.request("GET", "/reports/", headers={"Cookie": cookie}).status == 200
    assert two.request("POST", "/signout", headers={"Cookie": cookie}).status == 303
    for server in (one, two) * 3:   # the copy of the cookie opens nothing, whichever worker answers
        assert server.request("GET", "/reports/", headers={"Cookie": cookie}).status == 401


def test_a_demo_payment_opened_on_one_host_is_paid_on_the_other(servers, campaign_file) -> None:
    one, two = servers
    pay = one.request("GET", f"/pay/{token('IT-000123')}?option=full&src=qr")
    assert pay.status == 303
    checkout = pay.headers["location"]
    assert two.request("GET", checkout).status == 200
    done = two.request("POST", checkout, b"action=pay", {"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status == 303 and done.headers["location"].endswith("?paid=1"), done.text  # the webhook verified
    ledger = load_campaign(campaign_file).ledger.removeprefix("sqlite:///")
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT status FROM payments WHERE provider = 'demo'").fetchall() == [("paid",)]


def test_the_beacons_rate_limit_holds_across_hosts(servers) -> None:
    one, two = servers
    answers = [(one if i % 2 else two).request("POST", f"/e/{token('DE-000456')}", b'{"kind": "pay_click"}',
                                               {"Content-Type": "text/plain"}).status for i in range(8)]
    assert answers == [204] * 6 + [429, 429]   # clicks: counted every time, so they meet the limit
    views = [(one if i % 2 else two).request("POST", f"/e/{token('US-001234')}", b'{"kind": "view"}',
                                             {"Content-Type": "text/plain"}).status for i in range(8)]
    assert views == [204] * 8   # one visitor's view: counted once, the repeats answered alike and not counted


def test_the_dev_flag_and_the_worker_count_are_options() -> None:
    args = parser().parse_args(["serve", "c.toml", "--workers", "3", "--dev", "--host", "0.0.0.0", "--port", "9"])
    assert (args.campaigns, args.workers, args.dev, args.host, args.port) == (["c.toml"], 3, True, "0.0.0.0", 9)


def test_gunicorn_runs_the_app_with_the_settings(campaign_file, tmp_path) -> None:
    from billcast.server import GunicornLogger, Server, gunicorn_options

    settings = load_settings({"BILLCAST_WORKERS": "3", "BILLCAST_THREADS": "2", "BILLCAST_HOST": "::1"}, port=8123)
    options = gunicorn_options(settings)
    server = Server(Flask("x"), options)
    assert (server.cfg.workers, server.cfg.threads, server.cfg.worker_class_str) == (3, 2, "gthread")
    assert server.cfg.bind == ["[::1]:8123"] and server.cfg.accesslog is None
    assert server.cfg.logger_class is GunicornLogger and server.cfg.secure_scheme_headers == {}


def test_serve_refuses_a_plain_http_public_url_outside_this_machine(tmp_path, campaign_file) -> None:
    from test_cli import one_line_error, run

    text = campaign_file.read_text(encoding="utf-8").replace("https://pay.lumen.test", "http://pay.lumen.test")
    text = text.replace('"customers.jsonl"', f'"{campaign_file.parent}/customers.jsonl"')
    (tmp_path / "campaign.toml").write_text(text, encoding="utf-8")
    one_line_error(run("serve", str(tmp_path / "campaign.toml"), cwd=tmp_path), 10, "pay_url", "https://")


# --- one app, through the test client: readiness, errors, limits, proxies -------------------------


@pytest.fixture
def app(campaign_file, tmp_path):
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "state"), "BILLCAST_ADMIN_TOKEN": ADMIN})
    made = create_app(service_settings(settings, (load_campaign(campaign_file),)))

    @made.get("/test/<int:code>")
    def fail(code: int):
        if code == 500:
            raise RuntimeError("boom")
        abort(code)

    yield made
    made.extensions["billcast"].close()


def test_readyz_names_the_check_that_failed(campaign_file, tmp_path, monkeypatch) -> None:
    import dataclasses

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    campaign = load_campaign(campaign_file)
    copy = tmp_path / "ledger.db"
    with sqlite3.connect(campaign.ledger.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    broken = dataclasses.replace(campaign, ledger=f"sqlite:///{copy}", store="s3://bucket/prefix",
                                 store_endpoint_url="http://127.0.0.1:9")  # nothing listens there
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "state")})
    app = create_app(service_settings(settings, (broken,)))
    client = app.test_client()
    with sqlite3.connect(copy) as db:  # a newer Billcast upgraded the ledger under the running service
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "unavailable", "failed": ["migrations", "store"],
                                 "checks": {"ledger": "ok", "migrations": "failed", "store": "failed"}}
    app.extensions["billcast"].close()  # and then the ledger's file is gone, a folder in its place
    for path in tmp_path.glob("ledger.db*"):
        path.unlink()
    copy.mkdir()
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.get_json()["failed"] == ["ledger", "migrations", "store"]
    text = answer.get_data(as_text=True)
    assert str(tmp_path) not in text and "127.0.0.1" not in text and "sqlite" not in text


@pytest.mark.parametrize("code", [400, 404, 405, 410, 413, 429, 500])
@pytest.mark.parametrize("language, title", [("en", "Error {code}"), ("it", "Errore {code}"),
                                             ("de", "Fehler {code}"), ("ar", "خطأ {code}")])
def test_error_pages_speak_the_readers_language(app, code, language, title) -> None:
    app.testing = False  # a 500 is answered, not raised
    answer = app.test_client().get(f"/test/{code}", headers={"Accept-Language": f"{language},en;q=0.5"})
    assert answer.status_code == code and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html
    assert title.format(code=code) in html and answer.headers["X-Request-Id"] in html
    assert "nonce-" in answer.headers["Content-Security-Policy"] and "boom" not in html


def test_a_recipients_error_page_is_in_their_language(app) -> None:
    it, de = token("IT-000123"), token("DE-000456")
    client = app.test_client()
    assert 'lang="it"' in client.get(f"/r/{it}/missing.png").get_data(as_text=True)
    assert 'lang="de"' in client.get(f"/r/{de}/missing.png", headers={"Accept-Language": "it"}).get_data(as_text=True)
    assert 'lang="en"' in client.get("/r/AAAAAAAAAAAAAAAAAAAAAA/").get_data(as_text=True)


@pytest.mark.parametrize("method, path, code", [
    ("GET", f"/e/{'A' * 22}", 404), ("POST", "/e/x/y", 405), ("PUT", "/stripe/webhook", 405),
    ("GET", "/healthz/more", 404), ("GET", "/studio/api/nothing", 404)])
def test_the_api_answers_errors_in_json(app, method, path, code) -> None:
    answer = app.test_client().open(path, method=method)
    assert answer.status_code == code and answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["status"] == code and body["request_id"] == answer.headers["X-Request-Id"]
    if code == 405:
        assert answer.headers["Allow"]


def test_a_caller_that_prefers_json_gets_json(app) -> None:
    answer = app.test_client().get("/nothing", headers={"Accept": "application/json"})
    assert answer.status_code == 404 and answer.get_json()["error"] == "Not Found"


@pytest.mark.parametrize("path, limit, sent, kind", [
    ("/stripe/webhook", 256 * 1024, "application/json", "application/json"),
    (f"/e/{'A' * 22}", 4 * 1024, "text/plain", "application/json"),
    ("/studio/bill_explainer/validate", 1024 * 1024, "application/json", "application/json"),
    ("/signin", 64 * 1024, "application/x-www-form-urlencoded", "text/html")])
def test_request_bodies_are_limited_per_route(app, path, limit, sent, kind) -> None:
    client = app.test_client()
    over = client.post(path, data=b"x" * (limit + 1), content_type=sent)
    assert over.status_code == 413 and over.mimetype == kind
    under = client.post(path, data=b"x" * (limit - 1), content_type=sent)
    assert under.status_code != 413


def test_hsts_only_over_https_and_proxies_only_when_trusted(campaign_file, tmp_path) -> None:
    campaign = load_campaign(campaign_file)

    def client(**env: str):
        settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "state"), **env})
        return create_app(service_settings(settings, (campaign,))).test_client()

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    plain = client()
    assert "Strict-Transport-Security" not in plain.get("/healthz").headers
    assert "Strict-Transport-Security" not in plain.get("/healthz", headers=forwarded).headers
    assert plain.get("/healthz", base_url="https://localhost").headers["Strict-Transport-Security"] == \
        "max-age=31536000; includeSubDomains"
    behind = client(BILLCAST_TRUSTED_PROXIES="1")
    assert "includeSubDomains" in behind.get("/healthz", headers=forwarded).headers["Strict-Transport-Security"]
    assert "Strict-Transport-Security" not in behind.get("/healthz").headers


def test_request_ids_are_echoed_when_sane_and_made_otherwise(app) -> None:
    client = app.test_client()
    assert client.get("/healthz", headers={"X-Request-Id": "lb-1234abcd"}).headers["X-Request-Id"] == "lb-1234abcd"
    for insane in ("short", "has space 12345678", "x" * 200, "<script>alert(1)</script>"):
        made = client.get("/healthz", headers={"X-Request-Id": insane}).headers["X-Request-Id"]
        assert made != insane and re.fullmatch(r"[0-9a-f]{32}", made)


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path, campaign_file) -> None:
    import socket

    from test_cli import one_line_error, run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(run("serve", str(campaign_file), "--port", str(port), cwd=tmp_path), 10, "--port",
                       f"127.0.0.1:{port}", "in use")
