"""Taking payments: the pay link, Stripe Checkout at click time, the webhook, and the demo provider.

Stripe calls go through the real ``stripe`` library to a local HTTP server that
records each request and answers as Stripe's API does (idempotency keys
included). Webhooks are signed as Stripe signs them. Each test runs on both
ledgers (a SQLite file, a PostgreSQL database); the store (a folder, with a
real published page) lives in tmp_path.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from flask.testing import FlaskClient

from billcast.jobs.campaign import Campaign, load_campaign
from billcast.jobs.ledger import Ledger
from billcast.jobs.publish import media_folder, publish_recipient
from billcast.jobs.records import amount_due, parse_record, record_values
from billcast.jobs.store import ObjectStore, open_store
from billcast.microsite import SiteSettings, build_site
from billcast.service import payments as payments_module
from billcast.service import webhooks as webhooks_module
from billcast.jobs.amounts import expected_amount, installments, minor_units
from billcast.service.payments import idempotency_key
from billcast.service import ServiceSettings, create_app
from billcast.renderer import PaymentError

from conftest import ROOT, sample

WEBHOOK_SECRET = "whsec_test_" + "k" * 32
STRIPE_KEY = "sk_test_billcast"
PUBLIC = "https://bills.lumen.test"
CUSTOMER = "IT-000124"  # in arrears: 185.15 EUR, a plan of 3 installments on offer
PERSONAL = ("first_name", "last_name", "email", "birth_date", "postcode", "account_number", "service_address")


# --- a campaign with a few recipients, one with a real published page ------------------------


@dataclass
class World:
    campaign: Campaign
    ledger: Ledger
    store: ObjectStore
    tokens: dict[str, str]
    record: dict[str, Any]

    def recipient(self, name: str):
        return self.ledger.recipient_by_token(self.tokens[name])

    def payments(self, name: str) -> list[dict[str, Any]]:
        return self.ledger.payments_for_token(self.tokens[name])

    def page(self, name: str) -> bytes:
        return self.store.get(f"r/{self.tokens[name]}/index.html")


def _campaign(folder: Path) -> Campaign:
    (folder / "customers.jsonl").write_text("", encoding="utf-8")
    (folder / "campaign.toml").write_text(f"""\
id = "test-2026-11"
input = "customers.jsonl"
store = "file://store"
public_url = "{PUBLIC}"
ledger = "sqlite:///ledger.db"
contact_url = "mailto:help@lumen.test"

[[rules]]
storyboard = "{ROOT / 'storyboards' / 'firm_reminder.yaml'}"
""", encoding="utf-8")
    return load_campaign(folder / "campaign.toml")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return _campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture
def world(loaded: Campaign, tmp_path: Path, ledger_url: str) -> Iterator[World]:
    campaign = replace(loaded, ledger=ledger_url, store=f"file://{tmp_path / 'store'}")
    ledger = Ledger(campaign.ledger)
    ledger.ensure_campaign(campaign.id, link_days=60)
    store = open_store(campaign.store)
    now = datetime.now(UTC)
    tokens = {name: secrets.token_urlsafe(16) for name in ("eur", "jpy", "kwd", "old", "gone", "paid", "zero")}
    record = sample(CUSTOMER)
    parsed = parse_record(record)
    assert parsed.debt is not None and parsed.debt.plan_offer is not None
    due = amount_due(parsed)
    assert due == Decimal("185.15")

    def add(name: str, customer_id: str, amount: Decimal, currency: str, **extra: Any) -> None:
        ledger.record_published(
            campaign_id=campaign.id, customer_id=customer_id, token=tokens[name], storyboard="firm_reminder",
            variant="", amount_due=amount, currency=currency, content_hash=f"{name:0<16}" + "0" * 48,
            published_at=extra.pop("published_at", now), expires_at=extra.pop("expires_at", now + timedelta(days=60)),
            **extra)

    add("eur", CUSTOMER, due, "EUR", plan_installments=parsed.debt.plan_offer.installments,
        days_past_due=parsed.debt.days_past_due, plan_first_due=parsed.debt.plan_offer.first_due_date,
        locale=parsed.locale)
    add("jpy", "JP-000001", Decimal("1200"), "JPY", days_past_due=10)
    add("kwd", "KW-000001", Decimal("12.345"), "KWD", days_past_due=40, plan_installments=4)
    add("old", "IT-000900", Decimal("20.00"), "EUR", published_at=now - timedelta(days=61),
        expires_at=now - timedelta(days=1))
    add("gone", "IT-000901", Decimal("20.00"), "EUR")
    ledger.mark_expired(campaign.id, ["IT-000901"])
    add("paid", "IT-000902", Decimal("20.00"), "EUR")
    ledger.mark_paid(tokens["paid"], now - timedelta(days=2))
    add("zero", "IT-000903", Decimal("0.00"), "EUR")

    # the real page, and the page as it reads once paid, published as `billcast run` does
    settings = SiteSettings(pay_url=PUBLIC, public_url=PUBLIC, static_url="../../static/0123456789abcdef/")
    content_hash = "eur".ljust(16, "0") + "0" * 48
    site = build_site(record_values(parsed), None, token=tokens["eur"], amount_due=due, settings=settings,
                      media=media_folder(content_hash))
    paid = build_site(record_values(parsed), None, token=tokens["eur"], amount_due=due, settings=settings,
                      media=media_folder(content_hash), paid=True)
    publish_recipient(store, tokens["eur"], content_hash, site, link_seconds=86400, paid_site=paid)
    yield World(campaign, ledger, store, tokens, record)
    ledger.close()


# --- a local stand-in for Stripe's API -----------------------------------------------------------


@dataclass
class FakeStripe:
    """Answers Checkout Sessions, PaymentIntents and SetupIntents as Stripe's API does; records every request.

    ``POST /v1/checkout/sessions`` (payment and setup mode), ``POST /v1/payment_intents`` (an off-session charge:
    402 ``card_declined`` for a payment method in ``declines``), ``GET /v1/payment_intents/<id>`` and
    ``GET /v1/setup_intents/<id>`` (the card a checkout saved: ``cards[id]``, else made up).
    """

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    fail: tuple[int, dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    declines: set[str] = field(default_factory=set)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def answer(self, method: str, path: str, raw: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        form = dict(parse_qsl(raw, keep_blank_values=True))
        with self.lock:
            self.requests.append({"method": method, "path": path, "raw": raw, "form": form, "headers": headers})
            if self.fail is not None:
                return self.fail
            if method == "GET" and path.startswith(("/v1/payment_intents/", "/v1/setup_intents/")):
                object_id = path.rsplit("/", 1)[-1]
                return 200, {"id": object_id, "object": path.split("/")[2][:-1], "customer": "cus_test_saved",
                             "payment_method": "pm_test_saved"} | self.cards.get(object_id, {})
            if method != "POST" or path not in ("/v1/checkout/sessions", "/v1/payment_intents"):
                return 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
            key = headers.get("Idempotency-Key", "")
            if key in self.by_key:
                first_raw, session = self.by_key[key]
                if first_raw != raw:
                    return 400, {"error": {"type": "idempotency_error", "message": (
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        "first used with.")}}
                return (402 if "error" in session else 200), session
            made = self._intent(form) if path == "/v1/payment_intents" else self._session(form)
            if key:
                self.by_key[key] = (raw, made)
            return (402 if "error" in made else 200), made

    @staticmethod
    def _session(form: dict[str, str]) -> dict[str, Any]:
        session_id = "cs_test_" + secrets.token_hex(12)
        setup = form.get("mode") == "setup"
        return {
            "id": session_id, "object": "checkout.session", "mode": form.get("mode"), "status": "open",
            "payment_status": "no_payment_required" if setup else "unpaid",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "client_reference_id": form.get("client_reference_id"), "customer": form.get("customer"),
            "amount_total": None if setup else int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["currency"] if setup else form["line_items[0][price_data][currency]"],
            "expires_at": int(form["expires_at"]),
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        }

    def _intent(self, form: dict[str, str]) -> dict[str, Any]:
        intent = {"id": "pi_test_" + secrets.token_hex(12), "object": "payment_intent",
                  "amount": int(form["amount"]), "currency": form["currency"], "customer": form.get("customer"),
                  "payment_method": form.get("payment_method"), "status": "succeeded",
                  "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        if form.get("payment_method") in self.declines:
            intent["status"] = "requires_payment_method"
            return {"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                              "message": "Your card was declined.", "payment_intent": intent}}
        return intent

    @property
    def intents(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/payment_intents"]

    @property
    def sessions(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/checkout/sessions"]


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with serve_fake(FakeStripe()) as fake:
        yield fake


@contextmanager
def serve_fake(fake: FakeStripe) -> Iterator[FakeStripe]:
    """Serve ``fake`` on a local port in a thread, for the ``stripe`` library to talk to."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._reply("GET", "")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self._reply("POST", self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8"))

        def _reply(self, method: str, raw: str) -> None:
            status, body = fake.answer(method, urlsplit(self.path).path, raw, dict(self.headers.items()))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_" + secrets.token_hex(6))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _app(world: World, **settings: Any):
    app = create_app(ServiceSettings(campaigns=(world.campaign,), webhook_secret=WEBHOOK_SECRET,
                                     session_secret=b"s" * 32, secure_cookies=False, **settings))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(world: World, fake_stripe: FakeStripe) -> Iterator[FlaskClient]:
    app = _app(world, stripe_api_key=STRIPE_KEY, stripe_api_base=fake_stripe.url)
    yield app.test_client()
    app.extensions["billcast"].close()


@pytest.fixture
def demo(world: World) -> Iterator[FlaskClient]:
    app = _app(world)
    yield app.test_client()
    app.extensions["billcast"].close()


def click(client: FlaskClient, token: str, option: str = "full", src: str = "site"):
    return client.get(f"/pay/{token}?option={option}&src={src}")


# --- amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount, currency, minor", [
    ("185.15", "EUR", 18515), ("1200", "JPY", 1200), ("12.345", "KWD", 12345), ("0.10", "EUR", 10),
    ("97.6", "USD", 9760), ("1145.80", "EGP", 114580), ("1200.0", "JPY", 1200)])
def test_minor_units_are_exact_by_the_currency_precision(amount: str, currency: str, minor: int) -> None:
    assert minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize("amount, currency", [("185.155", "EUR"), ("1200.5", "JPY"), ("1.2345", "KWD")])
def test_an_amount_finer_than_its_currency_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(PaymentError, match=f"amount_due: {amount} {currency} has more decimals"):
        minor_units(Decimal(amount), currency)


def test_installments_add_up_and_differ_by_one_unit_at_most(world: World) -> None:
    assert installments(18515, 3) == [6172, 6172, 6171]
    assert installments(1200, 4) == [300, 300, 300, 300]
    for total, count in ((18515, 3), (1, 2), (99999, 24), (52705, 12)):
        parts = installments(total, count)
        assert sum(parts) == total and len(parts) == count and max(parts) - min(parts) <= 1
    eur = world.recipient("eur")
    assert (expected_amount(eur, "full"), expected_amount(eur, "plan")) == (18515, 6172)
    with pytest.raises(PaymentError, match="no payment plan"):
        expected_amount(world.recipient("jpy"), "plan")


def test_idempotency_keys_follow_token_option_amount_and_day() -> None:
    key = idempotency_key("t" * 22, "full", 18515, "EUR", date(2026, 11, 3))
    assert key.startswith("billcast-") and len(key) == len("billcast-") + 64
    assert key == idempotency_key("t" * 22, "full", 18515, "EUR", date(2026, 11, 3))
    others = {idempotency_key("t" * 22, "plan", 18515, "EUR", date(2026, 11, 3)),
              idempotency_key("u" * 22, "full", 18515, "EUR", date(2026, 11, 3)),
              idempotency_key("t" * 22, "full", 18516, "EUR", date(2026, 11, 3)),
              idempotency_key("t" * 22, "full", 18515, "EUR", date(2026, 11, 4)),
              idempotency_key("t" * 22, "full", 18515, "EUR", date(2026, 11, 3), attempt=1)}
    assert key not in others and len(others) == 5


# --- GET /pay: Stripe Checkout at click time ----------------------------------------------------


def test_a_click_opens_a_stripe_checkout_session_for_the_amount_due(client: FlaskClient, world: World,
                                                                     fake_stripe: FakeStripe) -> None:
    before = int(time.time())
    answer = click(client, world.tokens["eur"], "full", "qr")
    assert answer.status_code == 303
    [sent] = fake_stripe.requests
    form, headers = sent["form"], sent["headers"]
    session_id = answer.headers["Location"].rsplit("/", 1)[-1]
    assert answer.headers["Location"] == f"https://checkout.stripe.test/c/pay/{session_id}"
    assert (sent["method"], sent["path"]) == ("POST", "/v1/checkout/sessions")
    assert headers["Authorization"] == f"Bearer {STRIPE_KEY}"
    token = world.tokens["eur"]
    assert {k: v for k, v in form.items() if k != "expires_at"} == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "18515",
        "line_items[0][price_data][product_data][name]": "Lumen Energy bill payment",
        "client_reference_id": token,
        "metadata[campaign]": "test-2026-11", "metadata[option]": "full", "metadata[source]": "qr",
        "payment_intent_data[metadata][campaign]": "test-2026-11",
        "payment_intent_data[metadata][option]": "full", "payment_intent_data[metadata][source]": "qr",
        "success_url": f"{PUBLIC}/r/{token}/?paid=1",
        "cancel_url": f"{PUBLIC}/r/{token}/?cancelled=1",
    }
    expires = int(form["expires_at"])
    assert before + 30 * 60 <= expires <= before + 3600 < before + 24 * 3600
    key = headers["Idempotency-Key"]
    assert key == idempotency_key(token, "full", 18515, "EUR", datetime.now(UTC).date())
    [payment] = world.payments("eur")
    assert {k: payment[k] for k in ("provider", "provider_ref", "amount", "currency", "option", "source", "status",
                                    "idempotency_key", "flagged")} == {
        "provider": "stripe", "provider_ref": session_id, "amount": 18515, "currency": "EUR", "option": "full",
        "source": "qr", "status": "pending", "idempotency_key": key, "flagged": False}
    assert int(payment["expires_at"].timestamp()) == expires


def test_the_plan_charges_the_first_installment_and_saves_the_card(client: FlaskClient, world: World,
                                                                   fake_stripe: FakeStripe) -> None:
    assert click(client, world.tokens["eur"], "plan", "video").status_code == 303
    [sent] = fake_stripe.requests
    form = sent["form"]
    assert form["line_items[0][price_data][unit_amount]"] == "6172"
    assert form["line_items[0][price_data][product_data][name]"] == "Lumen Energy payment plan: first installment of 3"
    assert form["payment_intent_data[setup_future_usage]"] == "off_session"
    assert form["customer_creation"] == "always"
    assert (form["metadata[option]"], form["metadata[source]"]) == ("plan", "video")
    assert (form["payment_intent_data[metadata][option]"], form["payment_intent_data[metadata][source]"]) == (
        "plan", "video")
    [payment] = world.payments("eur")
    assert (payment["amount"], payment["option"], payment["source"]) == (6172, "plan", "video")


@pytest.mark.parametrize("name, option, currency, minor", [
    ("jpy", "full", "jpy", "1200"), ("kwd", "full", "kwd", "12345"), ("kwd", "plan", "kwd", "3087")])
def test_amounts_go_to_stripe_in_each_currency_s_minor_units(client: FlaskClient, world: World,
                                                             fake_stripe: FakeStripe, name: str, option: str,
                                                             currency: str, minor: str) -> None:
    assert click(client, world.tokens[name], option).status_code == 303
    [sent] = fake_stripe.requests
    assert (sent["form"]["line_items[0][price_data][currency]"],
            sent["form"]["line_items[0][price_data][unit_amount]"]) == (currency, minor)


def test_the_same_click_reuses_its_session_and_key_and_another_option_gets_another(
        client: FlaskClient, world: World, fake_stripe: FakeStripe) -> None:
    token = world.tokens["eur"]
    first = click(client, token, "full", "site")
    again = click(client, token, "full", "email")      # the same day, from the email this time
    plan = click(client, token, "plan", "site")
    assert first.status_code == again.status_code == plan.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] != plan.headers["Location"]
    keys = [r["headers"]["Idempotency-Key"] for r in fake_stripe.sessions]
    assert keys[0] == keys[1] != keys[2]
    assert fake_stripe.sessions[0]["raw"] == fake_stripe.sessions[1]["raw"], "a key is reused with its parameters"
    assert [(p["option"], p["source"]) for p in world.payments("eur")] == [("full", "site"), ("plan", "site")]

    # once the open session is about to expire, the next click opens a new one, with a new key
    old = world.payments("eur")[0]
    world.ledger.upsert_payment(campaign_id=old["campaign_id"], token=token, provider="stripe",
                                provider_ref=old["provider_ref"], amount=old["amount"], currency="EUR",
                                option="full", source="site", status="pending",
                                expires_at=datetime.now(UTC) + timedelta(minutes=5))
    later = click(client, token, "full", "site")
    assert later.status_code == 303 and later.headers["Location"] != first.headers["Location"]
    assert fake_stripe.sessions[-1]["headers"]["Idempotency-Key"] == idempotency_key(
        token, "full", 18515, "EUR", datetime.now(UTC).date(), attempt=1)
    assert len(world.payments("eur")) == 3


def test_a_key_stripe_refuses_for_other_parameters_is_replaced_once(client: FlaskClient, world: World,
                                                                    fake_stripe: FakeStripe) -> None:
    token = world.tokens["eur"]
    key = idempotency_key(token, "full", 18515, "EUR", datetime.now(UTC).date())
    fake_stripe.by_key[key] = ("a request made before the service stopped", {})
    answer = click(client, token)
    assert answer.status_code == 303
    first, second = fake_stripe.sessions
    assert first["headers"]["Idempotency-Key"] == key
    assert second["headers"]["Idempotency-Key"].startswith(key + "-")
    [payment] = world.payments("eur")
    assert payment["idempotency_key"] == second["headers"]["Idempotency-Key"]


def test_no_personal_data_reaches_stripe(client: FlaskClient, world: World, fake_stripe: FakeStripe) -> None:
    for option, src in (("full", "site"), ("plan", "video"), ("full", "qr"), ("plan", "email")):
        assert click(client, world.tokens["eur"], option, src).status_code == 303
    personal = [str(world.record[key]) for key in PERSONAL if world.record.get(key)]
    personal += [CUSTOMER, str(world.record["first_name"]).lower()]
    assert len(personal) >= 6
    assert fake_stripe.requests
    for sent in fake_stripe.requests:
        text = sent["path"] + sent["raw"] + json.dumps(sent["headers"])
        decoded = json.dumps(sent["form"], ensure_ascii=False)
        for value in personal:
            assert value not in text and value not in decoded, f"{value!r} was sent to Stripe"
        assert "customer_email" not in sent["form"] and not any(k.startswith("customer_details") for k in sent["form"])


def test_an_unknown_token_is_a_404_page_that_does_not_repeat_it(client: FlaskClient, fake_stripe: FakeStripe) -> None:
    for token in (secrets.token_urlsafe(16), "not-a-token", "x" * 200):
        answer = click(client, token)
        assert answer.status_code == 404 and answer.mimetype == "text/html"
        html = answer.get_data(as_text=True)
        assert "Page not found" in html and token not in html
    assert not fake_stripe.requests


@pytest.mark.parametrize("query, name", [
    ("option=half&src=site", "option"), ("src=site", "option"), ("option=full&src=sms", "src"),
    ("option=full", "src"), ("option=FULL&src=site", "option")])
def test_a_bad_option_or_source_is_a_400_naming_it(client: FlaskClient, world: World, fake_stripe: FakeStripe,
                                                   query: str, name: str) -> None:
    answer = client.get(f"/pay/{world.tokens['eur']}?{query}")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert f"{name}: must be one of" in answer.get_data(as_text=True)
    assert not fake_stripe.requests and not world.payments("eur")


@pytest.mark.parametrize("name", ["old", "gone"])
def test_an_expired_link_is_a_410_page_that_says_how_to_get_help(client: FlaskClient, world: World,
                                                                 fake_stripe: FakeStripe, name: str) -> None:
    answer = click(client, world.tokens[name])
    assert answer.status_code == 410
    html = answer.get_data(as_text=True)
    assert "This link has expired" in html and "Lumen Energy" in html
    assert 'href="mailto:help@lumen.test"' in html
    assert "/pay/" not in html and not fake_stripe.requests
    assert "nonce-" in answer.headers["Content-Security-Policy"]


def test_a_paid_recipient_gets_the_thank_you_page(client: FlaskClient, world: World,
                                                   fake_stripe: FakeStripe) -> None:
    answer = click(client, world.tokens["paid"])
    assert answer.status_code == 200 and "Paid – thank you" in answer.get_data(as_text=True)
    # a paid payment in the ledger counts too, before the recipient is marked paid
    world.ledger.upsert_payment(campaign_id=world.campaign.id, token=world.tokens["jpy"], provider="stripe",
                                provider_ref="cs_test_elsewhere", amount=1200, currency="JPY", option="full",
                                source="email", status="paid")
    answer = click(client, world.tokens["jpy"])
    assert answer.status_code == 200 and "Paid – thank you" in answer.get_data(as_text=True)
    assert click(client, world.tokens["zero"]).status_code == 200
    assert not fake_stripe.requests


def test_a_plan_where_none_is_offered_is_a_400(client: FlaskClient, world: World, fake_stripe: FakeStripe) -> None:
    answer = click(client, world.tokens["jpy"], "plan", "qr")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "No payment plan for this bill" in html
    assert f'href="/pay/{world.tokens["jpy"]}?option=full&amp;src=qr"' in html
    assert not fake_stripe.requests and not world.payments("jpy")


def test_a_stripe_error_is_a_502_logged_without_personal_data(client: FlaskClient, world: World,
                                                             fake_stripe: FakeStripe,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    fake_stripe.fail = (400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid_integer",
                                        "message": f"Invalid URL: {PUBLIC}/r/{world.tokens['eur']}/?paid=1"}})
    with caplog.at_level(logging.INFO):
        answer = click(client, world.tokens["eur"])
    assert answer.status_code == 502
    assert "Payment is not available right now" in answer.get_data(as_text=True)
    assert not world.payments("eur")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("billcast"))
    assert "InvalidRequestError" in logged and "parameter_invalid_integer" in logged
    for value in (world.tokens["eur"], CUSTOMER, world.record["first_name"], world.record["email"]):
        assert value not in logged


# --- POST /stripe/webhook -----------------------------------------------------------------------


def event(world: World, kind: str, session_id: str, *, name: str = "eur", amount: int = 18515,
          currency: str = "eur", payment_status: str = "paid", option: str = "full", source: str = "site",
          metadata: dict[str, str] | None = None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "type": kind,
        "created": int(time.time()), "livemode": False,
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "client_reference_id": world.tokens[name],
            "amount_total": amount, "currency": currency, "payment_status": payment_status,
            "payment_intent": "pi_" + session_id[-12:],
            "metadata": {"campaign": world.campaign.id, "option": option, "source": source}
            if metadata is None else metadata,
            "customer_details": {"email": world.record["email"], "name": "Someone Else"},
        }},
    }


def deliver(client: FlaskClient, body: dict[str, Any] | str, *, secret: str = WEBHOOK_SECRET,
            timestamp: int | None = None, tamper: bool = False, header: str | None = None):
    payload = body if isinstance(body, str) else json.dumps(body)
    signature = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    if tamper:
        payload = payload.replace('"amount_total": ', '"amount_total": 1')
    return client.post("/stripe/webhook", data=payload.encode(), content_type="application/json",
                       headers={"Stripe-Signature": header if header is not None else signature})


def opened(client: FlaskClient, world: World, name: str = "eur", option: str = "full") -> str:
    """Click the pay link; the id of the session it opened."""
    answer = click(client, world.tokens[name], option)
    assert answer.status_code == 303
    return answer.headers["Location"].rsplit("/", 1)[-1]


def page_state(world: World, name: str = "eur") -> str:
    html = world.page(name).decode()
    if 'class="plan-state' in html:  # before paid: the inline stylesheet names pay-card--paid on every page
        return "plan"
    if "pay-card--paid" in html and "/pay/" not in html:
        return "paid"
    assert "/pay/" in html
    return "open"


def test_one_event_delivered_three_times_is_one_payment_and_the_page_shows_paid(
        client: FlaskClient, world: World) -> None:
    session_id = opened(client, world)
    assert page_state(world) == "open"
    completed = event(world, "checkout.session.completed", session_id)
    answers = [deliver(client, completed) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.get_data(as_text=True) for a in answers] == ["ok\n", "duplicate\n", "duplicate\n"]
    [payment] = world.payments("eur")
    assert {k: payment[k] for k in ("provider_ref", "status", "amount", "currency", "option", "source", "flagged",
                                    "payment_intent")} == {
        "provider_ref": session_id, "status": "paid", "amount": 18515, "currency": "EUR", "option": "full",
        "source": "site", "flagged": False, "payment_intent": "pi_" + session_id[-12:]}
    recipient = world.recipient("eur")
    assert recipient.paid_at == datetime.fromtimestamp(completed["created"], UTC)
    html = world.page("eur")
    assert b"pay-card--paid" in html and b"/pay/" not in html
    assert world.store.head(f"r/{world.tokens['eur']}/index.html").metadata["page-state"] == "paid"
    # and the pay link now says thank you
    assert "Paid – thank you" in click(client, world.tokens["eur"]).get_data(as_text=True)


def test_concurrent_deliveries_of_one_event_record_it_once(client: FlaskClient, world: World) -> None:
    session_id = opened(client, world)
    completed = json.dumps(event(world, "checkout.session.completed", session_id))
    app = client.application
    start, answers = threading.Barrier(6), []

    def post() -> None:
        start.wait(timeout=10)
        answers.append(deliver(app.test_client(), completed).get_data(as_text=True))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == ["duplicate\n"] * 5 + ["ok\n"]
    assert [p["status"] for p in world.payments("eur")] == ["paid"]
    assert page_state(world) == "paid"


@pytest.mark.parametrize("how", ["tampered", "stale", "wrong secret", "no header", "garbage header"])
def test_a_bad_or_stale_signature_is_a_400_and_records_nothing(client: FlaskClient, world: World, how: str) -> None:
    session_id = opened(client, world)
    completed = event(world, "checkout.session.completed", session_id)
    answer = {
        "tampered": lambda: deliver(client, completed, tamper=True),
        "stale": lambda: deliver(client, completed, timestamp=int(time.time()) - 301),
        "wrong secret": lambda: deliver(client, completed, secret="whsec_other"),
        "no header": lambda: deliver(client, completed, header=""),
        "garbage header": lambda: deliver(client, completed, header="t=abc,v1=00"),
    }[how]()
    assert answer.status_code == 400
    assert [p["status"] for p in world.payments("eur")] == ["pending"]
    assert world.recipient("eur").paid_at is None and page_state(world) == "open"
    # nothing was recorded, not even the event id: the genuine delivery is handled
    assert deliver(client, completed).get_data(as_text=True) == "ok\n"
    assert world.recipient("eur").paid_at is not None


def test_async_failure_and_expiry_leave_the_balance_open(client: FlaskClient, world: World) -> None:
    failing = opened(client, world)
    assert deliver(client, event(world, "checkout.session.completed", failing,
                                 payment_status="unpaid")).status_code == 200
    assert world.ledger.payment(failing)["status"] == "pending"
    assert deliver(client, event(world, "checkout.session.async_payment_failed", failing,
                                 payment_status="unpaid")).status_code == 200
    assert world.ledger.payment(failing)["status"] == "failed"
    plan = opened(client, world, option="plan")
    assert deliver(client, event(world, "checkout.session.expired", plan, amount=6172, option="plan",
                                 payment_status="unpaid")).status_code == 200
    assert world.ledger.payment(plan)["status"] == "expired"
    assert world.recipient("eur").paid_at is None and page_state(world) == "open"
    assert not any(p["flagged"] for p in world.payments("eur"))
    # the balance is still open: the link opens a new session
    assert opened(client, world) not in (failing, plan)


def test_an_unpaid_completion_stays_pending_until_the_async_payment_succeeds(client: FlaskClient,
                                                                             world: World) -> None:
    session_id = opened(client, world)
    assert deliver(client, event(world, "checkout.session.completed", session_id,
                                 payment_status="unpaid")).status_code == 200
    assert world.ledger.payment(session_id)["status"] == "pending"
    assert world.recipient("eur").paid_at is None and page_state(world) == "open"
    assert deliver(client, event(world, "checkout.session.async_payment_succeeded", session_id)).status_code == 200
    assert world.ledger.payment(session_id)["status"] == "paid"
    assert world.recipient("eur").paid_at is not None and page_state(world) == "paid"
    # news arriving late does not undo it
    assert deliver(client, event(world, "checkout.session.expired", session_id)).status_code == 200
    assert world.ledger.payment(session_id)["status"] == "paid"


@pytest.mark.parametrize("amount, currency, reason", [
    (100, "eur", "amount 100 EUR differs from the amount due, 18515 EUR"),
    (18515, "usd", "currency USD differs from the ledger's EUR")])
def test_a_wrong_amount_or_currency_is_recorded_flagged_and_not_trusted(
        client: FlaskClient, world: World, amount: int, currency: str, reason: str) -> None:
    session_id = opened(client, world)
    answer = deliver(client, event(world, "checkout.session.completed", session_id, amount=amount,
                                   currency=currency))
    assert answer.status_code == 200
    payment = world.ledger.payment(session_id)
    assert (payment["status"], payment["amount"], payment["currency"], payment["flagged"]) == (
        "paid", amount, currency.upper(), True)
    assert payment["flag_reason"] == reason
    assert world.recipient("eur").paid_at is None and page_state(world) == "open"
    # a flagged payment does not count as paid at the pay link either
    assert click(client, world.tokens["eur"]).status_code == 303


def test_a_plan_s_first_installment_is_paid_but_the_balance_stays_open(client: FlaskClient, world: World) -> None:
    session_id = opened(client, world, option="plan")
    assert deliver(client, event(world, "checkout.session.completed", session_id, amount=6172,
                                 option="plan")).status_code == 200
    payment = world.ledger.payment(session_id)
    assert (payment["status"], payment["option"], payment["amount"], payment["flagged"]) == (
        "paid", "plan", 6172, False)
    assert world.recipient("eur").paid_at is None and page_state(world) == "plan"
    html = world.page("eur").decode()
    assert "1 di 3 rate pagate" in html and "/pay/" not in html  # the plan's state takes the pay buttons' place
    plan = world.ledger.plan_for_token(world.tokens["eur"])
    assert plan is not None and (plan.status, plan.total, plan.provider_customer, plan.payment_method) == (
        "active", 18515, "cus_test_saved", "pm_test_saved")  # the card, read back from the payment intent
    assert [(i.number, i.due_date, i.amount, i.status) for i in plan.installments] == [
        (1, date(2026, 12, 5), 6172, "paid"), (2, date(2027, 1, 5), 6172, "scheduled"),
        (3, date(2027, 2, 5), 6171, "scheduled")]
    answer = click(client, world.tokens["eur"], "full")
    assert answer.status_code == 200 and "payment plan has started" in answer.get_data(as_text=True)


def test_a_session_we_did_not_make_but_for_a_known_token_is_recorded(client: FlaskClient, world: World) -> None:
    body = event(world, "checkout.session.completed", "cs_test_dashboard", name="jpy", amount=1200,
                 currency="jpy", metadata={})
    assert deliver(client, body).status_code == 200
    payment = world.ledger.payment("cs_test_dashboard")
    assert {k: payment[k] for k in ("token", "provider", "status", "amount", "currency", "option", "source",
                                    "flagged")} == {
        "token": world.tokens["jpy"], "provider": "stripe", "status": "paid", "amount": 1200, "currency": "JPY",
        "option": "full", "source": "other", "flagged": False}
    assert world.recipient("jpy").paid_at is not None


def test_other_events_and_strangers_sessions_are_ignored(client: FlaskClient, world: World) -> None:
    session_id = opened(client, world)
    other = event(world, "payment_intent.succeeded", session_id)
    assert deliver(client, other).get_data(as_text=True) == "ignored\n"
    stranger = event(world, "checkout.session.completed", "cs_test_stranger")
    stranger["data"]["object"]["client_reference_id"] = secrets.token_urlsafe(16)
    assert deliver(client, stranger).get_data(as_text=True) == "ignored: not ours\n"
    assert deliver(client, "not json").status_code == 400
    assert [p["status"] for p in world.payments("eur")] == ["pending"]
    assert world.ledger.payment("cs_test_stranger") is None


def test_a_failure_while_handling_is_a_500_and_the_retry_is_handled(client: FlaskClient, world: World,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = opened(client, world)
    completed = event(world, "checkout.session.completed", session_id)

    def broken(*_args: Any) -> bool:
        raise OSError("the store is away")

    monkeypatch.setattr(webhooks_module, "show_paid", broken)
    assert deliver(client, completed).status_code == 500
    monkeypatch.undo()
    assert deliver(client, completed).get_data(as_text=True) == "ok\n"
    assert page_state(world) == "paid"


# --- the demo provider --------------------------------------------------------------------------


def test_the_demo_provider_end_to_end(demo: FlaskClient, world: World) -> None:
    token = world.tokens["eur"]
    answer = click(demo, token, "full", "video")
    assert answer.status_code == 303
    checkout_path = answer.headers["Location"]
    assert checkout_path.startswith("/demo/checkout/cs_demo_")
    session_id = checkout_path.rsplit("/", 1)[-1]
    [payment] = world.payments("eur")
    assert (payment["provider"], payment["provider_ref"], payment["status"], payment["amount"]) == (
        "demo", session_id, "pending", 18515)
    assert click(demo, token, "full", "site").headers["Location"] == checkout_path, "the open session is reused"

    page = demo.get(checkout_path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "This is a demo: no card is charged." in html
    assert "€185.15" in html and "Lumen Energy bill payment" in html
    assert 'value="pay"' in html and 'value="cancel"' in html
    assert world.record["first_name"] not in html and CUSTOMER not in html

    cancelled = demo.post(checkout_path, data={"action": "cancel"})
    assert cancelled.status_code == 303 and cancelled.headers["Location"] == f"{PUBLIC}/r/{token}/?cancelled=1"
    assert world.ledger.payment(session_id)["status"] == "pending"

    paid = demo.post(checkout_path, data={"action": "pay"})
    assert paid.status_code == 303 and paid.headers["Location"] == f"{PUBLIC}/r/{token}/?paid=1"
    payment = world.ledger.payment(session_id)
    assert (payment["status"], payment["flagged"], payment["source"]) == ("paid", False, "video")
    assert payment["payment_intent"].startswith("pi_demo_")
    assert world.recipient("eur").paid_at is not None and page_state(world) == "paid"
    assert "Paid – thank you" in click(demo, token).get_data(as_text=True)
    assert demo.get(checkout_path).status_code == 303           # paid already: back to the page


def test_the_demo_plan_and_its_webhook_are_the_real_code_path(demo: FlaskClient, world: World,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = webhooks_module.receive

    def spy(payload: bytes, signature: str | None) -> tuple[int, str]:
        seen.append(signature or "")
        return real(payload, signature)

    monkeypatch.setattr(webhooks_module, "receive", spy)
    checkout_path = click(demo, world.tokens["kwd"], "plan", "qr").headers["Location"]
    html = demo.get(checkout_path).get_data(as_text=True)
    assert "first installment of 4" in html and "KWD" in html and "3.087" in html
    assert demo.post(checkout_path, data={"action": "pay"}).status_code == 303
    assert len(seen) == 1 and seen[0].startswith("t=") and ",v1=" in seen[0]
    [payment] = world.payments("kwd")
    assert (payment["status"], payment["amount"], payment["option"]) == ("paid", 3087, "plan")
    assert world.recipient("kwd").paid_at is None


def test_demo_checkout_pages_exist_only_for_demo_sessions(demo: FlaskClient, client: FlaskClient,
                                                          world: World) -> None:
    checkout_path = click(demo, world.tokens["eur"]).headers["Location"]
    assert client.get(checkout_path).status_code == 404          # a real provider is configured there
    assert demo.get("/demo/checkout/cs_demo_nothing").status_code == 404
    assert demo.get("/demo/checkout/cs_test_x").status_code == 404


def test_a_head_request_opens_no_session(client: FlaskClient, world: World, fake_stripe: FakeStripe) -> None:
    assert client.head(f"/pay/{world.tokens['eur']}?option=full&src=email").status_code == 200
    assert not fake_stripe.requests and not world.payments("eur")


def test_stripe_out_of_reach_is_a_502(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments_module, "NETWORK_RETRIES", 0)
    app = _app(world, stripe_api_key=STRIPE_KEY, stripe_api_base="http://127.0.0.1:9")
    answer = click(app.test_client(), world.tokens["eur"])
    assert answer.status_code == 502 and "Try again" in answer.get_data(as_text=True)
    assert not world.payments("eur")
    app.extensions["billcast"].close()
