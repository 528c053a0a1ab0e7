"""``POST /stripe/webhook`` as an attacker, or a confused sender, uses it.

Forgeries (no, bad, stale or other-secret signatures, a tampered body) and replays are refused or
de-duplicated; a correctly signed event of the wrong shape is a 400 with a logged reason, never a 500
(which Stripe would retry for days); random signed JSON never raises.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billcast.service import webhooks

from test_payments import WEBHOOK_SECRET, World, _app, deliver, event, loaded, world  # noqa: F401 - fixtures

KIND = "checkout.session.completed"


@pytest.fixture
def demo(world: World):
    app = _app(world)
    yield app.test_client()
    app.extensions["billcast"].close()


def signed(client, body: Any) -> Any:
    payload = json.dumps(body)
    return client.post("/stripe/webhook", data=payload.encode(), content_type="application/json",
                       headers={"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
                           payload, WEBHOOK_SECRET, None)})


@pytest.mark.parametrize("data", [[1, 2], "text", None, 7, {"object": [1]}, {"object": "cs_1"}, {"object": None},
                                  {"object": {"id": ["cs"]}}, {"object": {"id": "cs_1", "metadata": "x"}},
                                  {"object": {"id": "cs_1", "metadata": {"option": ["full"]}}},
                                  {"object": {"id": "cs_1", "amount_total": "12"}},
                                  {"object": {"id": "cs_1", "client_reference_id": {"t": 1}}}])
def test_a_signed_event_of_the_wrong_shape_is_a_400_with_a_reason(demo, world: World, data: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    body = event(world, KIND, "cs_test_shape")
    body["data"] = data
    with caplog.at_level(logging.WARNING, logger="billcast.webhooks"):
        answer = signed(demo, body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    reasons = [r.getMessage() for r in caplog.records if r.name == "billcast.webhooks"]
    assert reasons and all(world.tokens["eur"] not in r and world.record["email"] not in r for r in reasons)
    assert world.payments("eur") == []


@pytest.mark.parametrize("body", [[], "event", 3, None, {"id": 5, "type": KIND}, {"id": "evt_1", "type": ["x"]},
                                  {"id": "", "type": KIND}, {"id": "e" * 256, "type": KIND}])
def test_a_signed_body_that_is_no_event_is_a_400(demo, body: Any) -> None:
    assert signed(demo, body).status_code == 400


def test_an_event_with_a_huge_created_or_amount_is_recorded_not_a_500(demo, world: World) -> None:
    body = event(world, KIND, "cs_test_big", amount=10 ** 30)
    body["created"] = 10 ** 30
    assert signed(demo, body).status_code == 200
    [payment] = world.payments("eur")
    assert payment["flagged"] and "amount_total" in payment["flag_reason"]


@pytest.mark.parametrize("how", ["none", "garbage", "other secret", "stale", "tampered", "scheme v0 only"])
def test_forged_deliveries_are_refused_and_record_nothing(demo, world: World, how: str) -> None:
    body = event(world, KIND, "cs_test_forged")
    payload = json.dumps(body)
    header = {"none": "", "garbage": "t=1,v1=zz",
              "other secret": stripe.WebhookSignature.generate_signature_header(payload, "whsec_other", None),
              "stale": stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET,
                                                                         int(time.time()) - 3600),
              "tampered": None, "scheme v0 only": "t=%d,v0=%s" % (time.time(), "0" * 64)}[how]
    answer = deliver(demo, body, header=header, tamper=how == "tampered")
    assert answer.status_code == 400
    assert world.payments("eur") == []


def test_a_replayed_event_is_handled_once(demo, world: World) -> None:
    body = event(world, KIND, "cs_test_replay")
    answers = [deliver(demo, body).get_data(as_text=True).strip() for _ in range(3)]
    assert answers == ["ok", "duplicate", "duplicate"]
    assert len(world.payments("eur")) == 1


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=5),
                    max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=12) | JSON, "client_reference_id": st.sampled_from(["TOKEN", "nobody"]) | JSON,
    "amount_total": st.integers() | JSON, "currency": st.sampled_from(["eur", "EUR", "usd", ""]) | JSON,
    "payment_status": st.sampled_from(["paid", "unpaid"]) | JSON, "payment_intent": JSON,
    "metadata": st.dictionaries(st.sampled_from(["option", "source", "campaign"]), JSON, max_size=3) | JSON})
EVENTS = st.fixed_dictionaries({}, optional={
    "id": st.text(min_size=1, max_size=12) | JSON, "type": st.sampled_from(sorted(webhooks.HANDLED)) | JSON,
    "created": st.integers() | JSON, "data": st.fixed_dictionaries({}, optional={"object": FIELDS | JSON}) | JSON,
}) | JSON


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=EVENTS)
def test_random_signed_json_is_answered_never_raised(world: World, body: Any) -> None:
    app = _app(world)
    text = json.dumps(body).replace("TOKEN", world.tokens["eur"])
    header = stripe.WebhookSignature.generate_signature_header(text, WEBHOOK_SECRET, None)
    try:
        with app.app_context():
            status, answer = webhooks.receive(text.encode(), header)
    finally:
        app.extensions["billcast"].close()
    assert status in (200, 400), (status, answer)
