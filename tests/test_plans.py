"""Installment plans collected to the end: the schedule, ``billcast collect``, outcomes by webhook, a new card,
a plan that breaks, and two collectors at once.

Stripe is the real ``stripe`` library talking to the local stand-in of
``test_payments`` (Checkout Sessions, PaymentIntents, SetupIntents); webhooks are
signed as Stripe signs them. The demo provider is played through Flask's test
client. The world (a ledger, a store with a real page) is ``test_payments``'s.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from billcast.jobs.amounts import add_months, installments, plan_schedule
from billcast.jobs.ledger.schema import installment_table
from billcast.jobs.report import campaign_report, reconciliation_csv
from billcast.service import ServiceSettings, create_app
from billcast.service.collect import collect_due, installment_key

from test_payments import (PUBLIC, STRIPE_KEY, WEBHOOK_SECRET, FakeStripe, World, _app, click, deliver, event,  # noqa: F401
                           fake_stripe, loaded, opened, page_state, serve_fake, world)

TOKEN_NAME = "eur"  # IT-000124: 185.15 EUR in 3 installments from 2026-12-05, an Italian page


# --- arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize("total, count, parts", [
    (18515, 3, [6172, 6172, 6171]), (1001, 3, [334, 334, 333]), (1, 2, [1, 0]), (100, 24, [5] * 4 + [4] * 20),
    (12345, 4, [3087, 3086, 3086, 3086]), (99999, 7, [14286, 14286, 14286, 14286, 14285, 14285, 14285])])
def test_installments_sum_exactly_larger_first(total: int, count: int, parts: list[int]) -> None:
    assert installments(total, count) == parts and sum(parts) == total


def test_a_jpy_plan_has_whole_yen_and_monthly_dates_that_keep_the_day_or_the_month_s_end() -> None:
    schedule = plan_schedule(10_001, 4, date(2027, 1, 31))  # JPY: no minor digits, so whole yen
    assert schedule == [(date(2027, 1, 31), 2501), (date(2027, 2, 28), 2500), (date(2027, 3, 31), 2500),
                        (date(2027, 4, 30), 2500)]
    assert add_months(date(2027, 12, 31), 2) == date(2028, 2, 29)  # a leap year
    assert add_months(date(2026, 11, 5), 14) == date(2028, 1, 5)


# --- helpers -------------------------------------------------------------------------------------


def stripe_app(world: World, fake: FakeStripe, **campaign: Any) -> Flask:
    app = create_app(ServiceSettings(campaigns=(replace(world.campaign, **campaign),), webhook_secret=WEBHOOK_SECRET,
                                     session_secret=b"s" * 32, secure_cookies=False, stripe_api_key=STRIPE_KEY,
                                     stripe_api_base=fake.url))
    app.config["TESTING"] = True
    return app


def collect(app: Flask, on: date):
    with app.app_context():
        return collect_due(app.extensions["billcast"].campaigns[0], on)


def start_plan(client: FlaskClient, world: World) -> str:
    """Click the plan, and have Stripe say the first installment is paid; the session id."""
    session_id = opened(client, world, option="plan")
    assert deliver(client, event(world, "checkout.session.completed", session_id, amount=6172,
                                 option="plan")).get_data(as_text=True) == "ok\n"
    return session_id


def intent_event(world: World, kind: str, request: dict[str, Any], *, intent_id: str, amount: int | None = None,
                 code: str | None = None) -> dict[str, Any]:
    """What Stripe sends about an off-session charge the collector asked for (its form, as sent)."""
    form = request["form"]
    intent = {"id": intent_id, "object": "payment_intent", "amount": amount or int(form["amount"]),
              "currency": form["currency"], "customer": form["customer"], "payment_method": form["payment_method"],
              "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
    if code:
        intent["last_payment_error"] = {"type": "card_error", "code": code}
    return {"id": "evt_" + secrets.token_hex(12), "object": "event", "type": kind, "created": 1_800_000_000,
            "data": {"object": intent}}


@pytest.fixture
def started(world: World, fake_stripe: FakeStripe):
    """The service on the Stripe stand-in, the plan of 185.15 EUR in 3 started; yields (app, client, token)."""
    app = stripe_app(world, fake_stripe)
    client = app.test_client()
    start_plan(client, world)
    yield app, client, world.tokens[TOKEN_NAME]
    app.extensions["billcast"].close()


def charged(fake: FakeStripe, number: int) -> tuple[dict[str, Any], str]:
    """The collector's request for installment ``number``, and the intent id Stripe answered with."""
    request = [r for r in fake.intents if r["form"]["metadata[installment]"] == str(number)][-1]
    first_raw, answer = fake.by_key[request["headers"]["Idempotency-Key"]]
    assert first_raw == request["raw"]
    return request, (answer.get("error", {}).get("payment_intent") or answer)["id"]


# --- Stripe: collected to the end ----------------------------------------------------------------


def test_every_installment_is_charged_once_off_session_and_the_page_follows(world: World, fake_stripe: FakeStripe,
                                                                            started) -> None:
    app, client, token = started
    page = world.page(TOKEN_NAME).decode()
    assert "1 di 3 rate pagate" in page and "per evitare ulteriori azioni di recupero" not in page  # on a plan now
    assert collect(app, date(2027, 1, 4)).submitted == []  # nothing due yet
    done = collect(app, date(2027, 1, 5))
    assert done.submitted == [f"{token[:4]}…#2"] and not done.errors
    request, intent_id = charged(fake_stripe, 2)
    form = request["form"]
    assert {k: v for k, v in form.items() if not k.startswith("metadata[")} == {
        "amount": "6172", "currency": "eur", "customer": "cus_test_saved", "payment_method": "pm_test_saved",
        "off_session": "true", "confirm": "true", "description": "Lumen Energy payment plan: installment 2 of 3"}
    assert {k: v for k, v in form.items() if k.startswith("metadata[")} == {
        "metadata[campaign]": world.campaign.id, "metadata[option]": "plan", "metadata[source]": "collect",
        "metadata[token]": token, "metadata[installment]": "2"}
    assert request["headers"]["Idempotency-Key"] == installment_key(token, 2, 1)
    assert collect(app, date(2027, 1, 5)).submitted == [] and len(fake_stripe.intents) == 1  # run twice: once
    plan = world.ledger.plan_for_token(token)
    assert [i.status for i in plan.installments] == ["paid", "submitted", "scheduled"]

    succeeded = intent_event(world, "payment_intent.succeeded", request, intent_id=intent_id)
    assert deliver(client, succeeded).get_data(as_text=True) == "ok\n"
    assert deliver(client, succeeded).get_data(as_text=True) == "duplicate\n"
    assert "2 di 3 rate pagate" in world.page(TOKEN_NAME).decode() and page_state(world) == "plan"
    assert "61,71\xa0€" in world.page(TOKEN_NAME).decode()  # the next installment's amount, in Italian

    collect(app, date(2027, 2, 5))
    request, intent_id = charged(fake_stripe, 3)
    assert request["form"]["amount"] == "6171"
    deliver(client, intent_event(world, "payment_intent.succeeded", request, intent_id=intent_id))
    plan = world.ledger.plan_for_token(token)
    assert plan.status == "completed" and plan.open_balance == 0
    assert world.recipient(TOKEN_NAME).paid_at is not None and page_state(world) == "paid"

    report = campaign_report(world.ledger, world.campaign.id)
    rows = list(csv.DictReader(io.StringIO(reconciliation_csv(report.reconciliation))))
    assert sorted((r["installment"], r["amount"], r["option"]) for r in rows) == [
        ("1", "61.72", "plan"), ("2", "61.72", "plan"), ("3", "61.71", "plan")]
    assert dict(report.journey.installments)["paid"] == 3
    assert report.journey.collected == (("EUR", Decimal("185.15")),)


def test_a_declined_card_needs_a_new_one_and_the_next_collection_charges_it(world: World, fake_stripe: FakeStripe,
                                                                             started) -> None:
    app, client, token = started
    fake_stripe.declines.add("pm_test_saved")
    assert collect(app, date(2027, 1, 5)).submitted == [f"{token[:4]}…#2"]  # a decline is still the provider's
    request, intent_id = charged(fake_stripe, 2)
    assert deliver(client, intent_event(world, "payment_intent.payment_failed", request, intent_id=intent_id,
                                        code="card_declined")).status_code == 200
    plan = world.ledger.plan_for_token(token)
    assert (plan.status, plan.failures, plan.installments[1].status, plan.installments[1].error_code) == (
        "needs_card", 1, "failed", "card_declined")
    html = world.page(TOKEN_NAME).decode()
    update = f"{PUBLIC}/pay/{token}?option=card&amp;src=site"
    assert "Aggiorna la carta" in html and update in html
    assert collect(app, date(2027, 1, 6)).submitted == []  # nothing is charged while the plan waits for a card
    answer = click(client, token, "full")
    assert answer.status_code == 200 and "Update your card" in answer.get_data(as_text=True)

    answer = click(client, token, "card")
    assert answer.status_code == 303
    [setup] = [r for r in fake_stripe.sessions if r["form"].get("mode") == "setup"]
    assert {k: setup["form"][k] for k in ("mode", "currency", "customer", "client_reference_id",
                                          "metadata[option]")} == {
        "mode": "setup", "currency": "eur", "customer": "cus_test_saved", "client_reference_id": token,
        "metadata[option]": "card"}
    assert not any(k.startswith("line_items") for k in setup["form"])
    session_id = answer.headers["Location"].rsplit("/", 1)[-1]
    fake_stripe.cards["seti_test_new"] = {"payment_method": "pm_test_new"}
    completed = {"id": "evt_" + secrets.token_hex(8), "object": "event", "type": "checkout.session.completed",
                 "created": 1_800_000_000, "data": {"object": {
                     "id": session_id, "object": "checkout.session", "mode": "setup", "client_reference_id": token,
                     "setup_intent": "seti_test_new", "customer": "cus_test_saved", "status": "complete",
                     "metadata": {"campaign": world.campaign.id, "option": "card", "source": "site"}}}}
    assert deliver(client, completed).get_data(as_text=True) == "ok\n"
    plan = world.ledger.plan_for_token(token)
    assert (plan.status, plan.payment_method, plan.installments[1].status, plan.installments[1].attempt) == (
        "active", "pm_test_new", "scheduled", 2)
    assert world.ledger.payment(session_id)["status"] == "saved"
    assert "Aggiorna la carta" not in world.page(TOKEN_NAME).decode()

    collect(app, date(2027, 1, 6))
    retry, retry_id = charged(fake_stripe, 2)
    assert retry["form"]["payment_method"] == "pm_test_new"
    assert retry["headers"]["Idempotency-Key"] == installment_key(token, 2, 2) != installment_key(token, 2, 1)
    deliver(client, intent_event(world, "payment_intent.succeeded", retry, intent_id=retry_id))
    assert [i.status for i in world.ledger.plan_for_token(token).installments] == ["paid", "paid", "scheduled"]


def test_a_plan_breaks_after_its_failures_and_the_open_balance_is_paid_in_full(world: World,
                                                                               fake_stripe: FakeStripe) -> None:
    app = stripe_app(world, fake_stripe, plan_max_failures=2)
    client = app.test_client()
    token = world.tokens[TOKEN_NAME]
    start_plan(client, world)
    fake_stripe.declines.update({"pm_test_saved", "pm_test_also_bad"})
    for attempt, card in ((1, None), (2, "pm_test_also_bad")):
        if card:
            world.ledger.card_saved(token, card, None)
        collect(app, date(2027, 1, 5))
        request, intent_id = charged(fake_stripe, 2)
        assert request["headers"]["Idempotency-Key"] == installment_key(token, 2, attempt)
        deliver(client, intent_event(world, "payment_intent.payment_failed", request, intent_id=intent_id,
                                     code="card_declined"))
    plan = world.ledger.plan_for_token(token)
    assert (plan.status, plan.failures, plan.open_balance) == ("broken", 2, 12343)
    html = world.page(TOKEN_NAME).decode()
    assert "123,43\xa0€" in html and f"{PUBLIC}/pay/{token}?option=full&amp;src=site" in html
    assert collect(app, date(2027, 3, 1)).submitted == []  # a broken plan is never charged again
    assert click(client, token, "plan").status_code == 400  # nor started again
    session_id = opened(client, world, option="full")
    assert fake_stripe.sessions[-1]["form"]["line_items[0][price_data][unit_amount]"] == "12343"
    deliver(client, event(world, "checkout.session.completed", session_id, amount=12343))
    payment = world.ledger.payment(session_id)
    assert (payment["status"], payment["flagged"]) == ("paid", False)
    assert world.recipient(TOKEN_NAME).paid_at is not None and page_state(world) == "paid"
    app.extensions["billcast"].close()


def test_installment_webhooks_that_are_not_ours_or_wrong_are_ignored_or_flagged(world: World,
                                                                                fake_stripe: FakeStripe,
                                                                                started) -> None:
    app, client, token = started
    collect(app, date(2027, 1, 5))
    request, intent_id = charged(fake_stripe, 2)
    checkout_own = intent_event(world, "payment_intent.succeeded", request, intent_id="pi_checkout")
    del checkout_own["data"]["object"]["metadata"]["installment"]  # the intent a checkout session made itself
    assert deliver(client, checkout_own).get_data(as_text=True) == "ignored\n"
    wrong = intent_event(world, "payment_intent.succeeded", request, intent_id=intent_id, amount=1)
    assert deliver(client, wrong).get_data(as_text=True) == "ok\n"
    payment = world.ledger.payment(intent_id)
    assert payment["flagged"] and "differs from installment 2" in payment["flag_reason"]
    assert world.ledger.plan_for_token(token).installments[1].status == "submitted"  # not trusted
    stranger = intent_event(world, "payment_intent.succeeded", request, intent_id="pi_stranger")
    stranger["data"]["object"]["metadata"]["token"] = secrets.token_urlsafe(16)
    assert deliver(client, stranger).get_data(as_text=True) == "ignored: not ours\n"


def test_a_collector_that_died_after_claiming_is_taken_over_with_the_same_key(world: World,
                                                                              fake_stripe: FakeStripe,
                                                                              started) -> None:
    app, _, token = started
    plan = world.ledger.plan_for_token(token)
    claim = world.ledger.claim_installment(plan.id, 2)  # claimed, then the collector died before asking Stripe
    assert claim is not None and world.ledger.claim_installment(plan.id, 2) is None
    assert collect(app, date(2027, 1, 5)).submitted == []  # a fresh claim is someone else's
    world.ledger._write("test", lambda conn: conn.execute(
        installment_table.update().where(installment_table.c.plan_id == plan.id)
        .values(claimed_at=datetime.now(UTC) - timedelta(hours=1))))
    assert collect(app, date(2027, 1, 5)).submitted == [f"{token[:4]}…#2"]
    assert fake_stripe.intents[-1]["headers"]["Idempotency-Key"] == installment_key(token, 2, 1)


# --- two collectors at once ----------------------------------------------------------------------


def _collector(settings: ServiceSettings, on: date, ready: Any, go: Any, out: Any) -> None:
    app = create_app(settings)
    ready.wait()
    go.wait()
    with app.app_context():
        done = collect_due(settings.campaigns[0], on)
    out.put((len(done.submitted), done.elsewhere, len(done.errors)))


def test_two_collectors_at_once_charge_each_installment_once(world: World, fake_stripe: FakeStripe) -> None:
    ledger, campaign = world.ledger, world.campaign
    tokens = []
    for n in range(12):
        token = secrets.token_urlsafe(16)
        ledger.record_published(campaign_id=campaign.id, customer_id=f"PL-{n:03}", token=token,
                                storyboard="firm_reminder", variant="", amount_due=Decimal("100.01"), currency="EUR",
                                content_hash="h", published_at=datetime.now(UTC),
                                expires_at=datetime.now(UTC) + timedelta(days=60), plan_installments=4)
        ledger.upsert_payment(campaign_id=campaign.id, token=token, provider="stripe", provider_ref=f"cs_{n}",
                              amount=2501, currency="EUR", option="plan", source="site", status="paid")
        ledger.start_plan(campaign_id=campaign.id, token=token, provider="stripe", provider_customer=f"cus_{n}",
                          payment_method=f"pm_{n}", currency="EUR", schedule=plan_schedule(10001, 4, date(2026, 9, 1)),
                          first_payment=f"cs_{n}", paid_at=datetime.now(UTC))
        tokens.append(token)
    settings = ServiceSettings(campaigns=(campaign,), webhook_secret=WEBHOOK_SECRET, session_secret=b"s" * 32,
                               stripe_api_key=STRIPE_KEY, stripe_api_base=fake_stripe.url)
    context = multiprocessing.get_context("fork")
    ready, go, out = context.Barrier(3), context.Event(), context.Queue()
    workers = [context.Process(target=_collector, args=(settings, date(2026, 12, 1), ready, go, out))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.wait()
    go.set()
    for worker in workers:
        worker.join(60)
    results = [out.get(timeout=5) for _ in workers]
    charged_pairs = [(r["form"]["metadata[token]"], r["form"]["metadata[installment]"]) for r in fake_stripe.intents]
    assert len(charged_pairs) == len(set(charged_pairs)) == 12 * 3  # installments 2-4 of every plan, once each
    assert sum(submitted for submitted, _, _ in results) == 36 and all(errors == 0 for *_, errors in results)
    for token in tokens:
        assert [i.status for i in ledger.plan_for_token(token).installments] == ["paid"] + ["submitted"] * 3


# --- the demo provider plays it all --------------------------------------------------------------


def test_the_demo_plays_a_plan_with_a_card_that_fails_then_a_new_one(world: World) -> None:
    app = _app(world)
    client = app.test_client()
    token = world.tokens[TOKEN_NAME]
    checkout = click(client, token, "plan").headers["Location"]
    html = client.get(checkout).get_data(as_text=True)
    assert 'value="declines"' in html and "A card that will be declined later" in html
    assert client.post(checkout, data={"action": "pay", "card": "declines"}).status_code == 303
    plan = world.ledger.plan_for_token(token)
    assert plan.provider == "demo" and plan.payment_method.startswith("pm_demo_declines_")
    assert plan.provider_customer.startswith("cus_demo_")

    collect(app, date(2027, 1, 5))
    plan = world.ledger.plan_for_token(token)
    assert (plan.status, [i.status for i in plan.installments]) == ("needs_card", ["paid", "failed", "scheduled"])
    update = click(client, token, "card").headers["Location"]
    page = client.get(update).get_data(as_text=True)
    assert "Save card" in page and "Nothing is charged now" in page
    assert client.post(update, data={"action": "pay", "card": "works"}).status_code == 303
    assert world.ledger.plan_for_token(token).status == "active"
    collect(app, date(2027, 1, 5))
    collect(app, date(2027, 2, 5))
    plan = world.ledger.plan_for_token(token)
    assert plan.status == "completed" and world.recipient(TOKEN_NAME).paid_at is not None
    assert page_state(world) == "paid"
    paid = [p for p in world.payments(TOKEN_NAME) if p["status"] == "paid"]
    assert sorted(p["installment"] for p in paid) == [1, 2, 3] and sum(p["amount"] for p in paid) == 18515
    app.extensions["billcast"].close()
