"""The logs carry no personal data, no token and no client address, in either format, from any part.

A real ``billcast serve`` (gunicorn, two workers) is sent what the public and an
attacker send: pages, media, pay links, the demo checkout, beacons, webhooks,
sign-in, and 404s and 405s with tokens in their paths. Then every line it logged
is searched for each token, the client's address, the sample customers' names
and e-mails and every secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import shutil
import sys

import pytest
import stripe
from flask import abort

from billcast.jobs.campaign import load_campaign
from billcast.logs import JsonFormatter, TextFormatter, redact
from billcast.service import create_app
from billcast.settings import load_settings, service_settings

from served import ADMIN, CUSTOMERS, Served, published_campaign, token
from test_campaign_run import PERSONAL, plain

pytestmark = pytest.mark.slow
ROUTE_FIELDS = {"time", "level", "logger", "message", "request_id", "method", "route", "status", "duration_ms"}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return published_campaign(tmp_path_factory.mktemp("logged"))


@pytest.fixture
def campaign_file(published, tmp_path):
    """A copy of the published campaign for each test: a payment in one is not already made in the next."""
    shutil.copytree(published.parent, tmp_path / "campaign")
    return tmp_path / "campaign" / published.name


def personal_values() -> list[str]:
    values = []
    for cid in CUSTOMERS:
        record = plain(cid)
        values += [str(record[field]) for field in PERSONAL if record.get(field)]
    return values


def exercise(server: Served, state) -> list[str]:
    """What the public and an attacker send; returns the tokens used."""
    tokens = [token(cid) for cid in CUSTOMERS]
    unknown = "Zz" * 11
    for t in tokens:
        page = server.request("GET", f"/r/{t}/", headers={"X-Forwarded-For": "198.51.100.7"})
        assert page.status == 200
        video = re.search(r'src="(m/[0-9a-f]+/video\.mp4)"', page.text).group(1)
        assert server.request("GET", f"/r/{t}/{video}", headers={"Range": "bytes=0-99"}).status == 206
        assert server.request("POST", f"/e/{t}", b'{"kind": "view"}', {"Content-Type": "text/plain"}).status == 204
        assert server.request("GET", f"/r/{t}/nothing.html").status == 404
        assert server.request("GET", f"/pay/{t}x?option=full&src=qr").status == 404
        assert server.request("GET", f"/pay/{t}?option=half&src=qr").status == 400
        assert server.request("POST", f"/e/{t}/more", b"{}").status == 405
        assert server.request("GET", f"/e/{t}").status == 404
    pay = server.request("GET", f"/pay/{tokens[0]}?option=full&src=email")
    assert pay.status == 303
    checkout = pay.headers["location"]
    assert server.request("GET", checkout).status == 200
    paid = server.request("POST", checkout, b"action=pay", {"Content-Type": "application/x-www-form-urlencoded"})
    assert paid.status == 303
    event = json.dumps({"id": "evt_logs_1", "type": "checkout.session.completed", "created": 1,
                        "data": {"object": {"id": "cs_test_logs", "client_reference_id": tokens[1],
                                            "payment_status": "paid", "amount_total": 1, "currency": "eur"}}})
    secret = state.webhook_secret
    good = stripe.WebhookSignature.generate_signature_header(event, secret)
    assert server.request("POST", "/stripe/webhook", event.encode(), {"Stripe-Signature": good}).status == 200
    assert server.request("POST", "/stripe/webhook", event.encode(), {"Stripe-Signature": "t=1,v1=00"}).status == 400
    assert server.request("POST", "/signin", f"token={ADMIN}".encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"}).status == 303
    assert server.request("GET", f"/r/{unknown}/").status == 404
    return [*tokens, unknown]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_log_line_holds_a_token_an_address_or_personal_data(campaign_file, tmp_path, log_format) -> None:
    env = {"BILLCAST_ADMIN_TOKEN": ADMIN, "BILLCAST_STATE_DIR": str(tmp_path / "state")}
    state = service_settings(load_settings(env), (load_campaign(campaign_file),))
    argv = ["billcast", "--log-format", log_format, "serve", str(campaign_file), "--workers", "2",
            "--insecure-cookies"]
    with Served(argv, env, tmp_path) as server:
        tokens = exercise(server, state)
        server.stop()
        lines = server.log.splitlines()
    access = [line for line in lines if "billcast.access" in line]
    assert len(access) >= 8 * len(CUSTOMERS), lines
    forbidden = [*tokens, "127.0.0.1", "198.51.100.7", ADMIN, state.webhook_secret,
                 state.session_secret.decode(), *personal_values()]
    for line in lines:
        for value in forbidden:
            assert value not in line, f"{value!r} is in the log: {line}"
    hashes = {hmac.new(state.session_secret, t.encode(), "sha256").hexdigest()[:8] for t in tokens[:2]}
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        requests = [r for r in records if r["logger"] == "billcast.access"]
        assert all(ROUTE_FIELDS <= set(r) for r in requests)
        routes = {r["route"] for r in requests}
        assert {"/pay/<token>", "/e/<token>", "/<path:path>", "/stripe/webhook", "/signin", "-"} <= routes, routes
        assert {r["token_hash"] for r in requests if r["route"] == "/e/<token>"} == hashes
        assert {r["status"] for r in requests} >= {200, 204, 206, 303, 400, 404, 405}
    else:
        assert any(re.search(r" INFO billcast\.access: POST /e/<token> 204 [\d.]+ ms request_id=[0-9a-f]{32} "
                             r"token_hash=[0-9a-f]{8}$", line) for line in access), access[:5]
        assert any("Listening at: http://<address>:" in line for line in lines)


def test_an_unhandled_error_is_logged_by_route_without_its_token(campaign_file, tmp_path, caplog) -> None:
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "state")})
    app = create_app(service_settings(settings, (load_campaign(campaign_file),)))
    secret = token(CUSTOMERS[0])

    @app.get("/boom/<token>")
    def boom(token: str):
        raise RuntimeError(f"could not handle {token} from 127.0.0.1")

    caplog.set_level(logging.INFO)
    answer = app.test_client().get(f"/boom/{secret}")
    assert answer.status_code == 500 and secret not in answer.get_data(as_text=True)
    records = [r for r in caplog.records if r.name in ("billcast.service", "billcast.access")]
    assert [r.getMessage() for r in records][0] == "unhandled RuntimeError in GET /boom/<token>"
    for formatter in (JsonFormatter(), TextFormatter()):
        text = "\n".join(formatter.format(r) for r in records)
        assert "RuntimeError: could not handle <token> from <address>" in text
        assert secret not in text and "127.0.0.1" not in text


@pytest.mark.parametrize("text, expected", [
    ("Invalid request from ip=203.0.113.5: bad", "Invalid request from ip=<address>: bad"),
    ("Error handling request /pay/AbCdEfGhIjKlMnOpQrStUv?option=full",
     "Error handling request /pay/<token>?option=full"),
    ("GET /r/AbCdEfGhIjKlMnOpQrStUv/m/abc/video.mp4", "GET /r/<token>/m/abc/video.mp4"),
    ("POST /e/AbCdEfGhIjKlMnOpQrStUv and /demo/checkout/cs_demo_1", "POST /e/<token> and /demo/checkout/<token>"),
    ("from 2001:db8::1 and ::1 and [fe80::2]:80", "from <address> and <address> and [<address>]:80"),
    ("at 10:30:45, version 1.2, route /e/<token>", "at 10:30:45, version 1.2, route /e/<token>"),
    ("999.1.1.1 is no address", "999.1.1.1 is no address"),
])
def test_redaction(text, expected) -> None:
    assert redact(text) == expected


def test_redaction_removes_a_records_named_values() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s", ("s3cr3t-value",), None)
    record.redact = ("s3cr3t-value",)
    assert "s3cr3t-value" not in TextFormatter().format(record)
    assert json.loads(JsonFormatter().format(record))["message"] == "key <token>"


def test_gunicorn_logs_through_our_handler(monkeypatch) -> None:
    from gunicorn.config import Config

    from billcast.logs import configure_logging
    from billcast.server import GunicornLogger

    configure_logging("json", logging.INFO)
    cfg = Config()
    logger = GunicornLogger(cfg)
    assert not logger.error_log.handlers and logger.error_log.propagate and logger.access_log.disabled
    assert logger.access(None, None, {}, None) is None
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
    assert logging.getLogger().handlers[0].stream is sys.stderr
