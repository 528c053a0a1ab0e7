"""``POST /stripe/webhook``: the payment provider's news about checkout sessions, verified and recorded.

Every event is checked with ``stripe.Webhook.construct_event`` against the
configured signing secret (a bad or stale signature is refused before anything
is read or written), de-duplicated on its id in the recipient's ledger, and
answered at once. The demo provider's "Pay" button comes through :func:`receive`
too, with a body signed the same way. See ``docs/PAYMENTS.md``.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import stripe
from flask import Blueprint, Response, request

from billcast.jobs.amounts import expected_amount
from billcast.jobs.ledger import OPTIONS
from billcast.jobs.plans import paid_toward
from billcast.jobs.publish import show_paid
from billcast.microsite import SOURCES
from billcast.renderer import PaymentError

from . import plan_webhooks
from .context import Found, service

blueprint = Blueprint("webhooks", __name__)
log = logging.getLogger("billcast.webhooks")

# event type -> the payment's status (completed: "paid" only when payment_status says so)
HANDLED = {
    "checkout.session.completed": None,
    "checkout.session.async_payment_succeeded": "paid",
    "checkout.session.async_payment_failed": "failed",
    "checkout.session.expired": "expired",
}
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_AMOUNT = 10 ** 12  # minor units: an amount_total past this is recorded as the expected one, flagged


@blueprint.post("/stripe/webhook")
def stripe_webhook() -> Response:
    status, answer = receive(request.get_data(), request.headers.get("Stripe-Signature"))
    return Response(answer + "\n", status, mimetype="text/plain")


def receive(payload: bytes, signature: str | None) -> tuple[int, str]:
    """Verify and handle one webhook delivery; returns the HTTP status and a short answer.

    400 for a bad signature, or a body that is not an event of the expected shape (the
    reason is logged, never a value from it; nothing recorded); 200 for an event handled,
    seen before, or not ours to handle; 500 when handling failed, after taking
    back the event's de-duplication mark so that the provider's retry is handled.
    """
    try:
        stripe.Webhook.construct_event(payload, signature, service().settings.webhook_secret)
        event = json.loads(payload)
    except stripe.SignatureVerificationError:
        log.warning("webhook refused: bad or stale signature")
        return 400, "bad signature"
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
        log.warning("webhook refused: not a JSON event")
        return 400, "not a JSON event"
    problem = _event_problem(event)
    if problem is not None:
        log.warning("webhook refused: %s", problem)
        return 400, "malformed event"
    event_id, kind = event["id"], event["type"]
    if kind not in HANDLED and kind not in plan_webhooks.EVENTS:
        return 200, "ignored"
    session = event["data"]["object"]
    if kind in plan_webhooks.EVENTS:
        token, session_id = _token_and_id(kind, session)
        if token is None:
            return 200, "ignored"  # a checkout's own payment intent: its session's events say it all
    else:
        problem = _session_problem(session)
        if problem is not None:
            log.warning("webhook %s %s refused: %s", event_id, kind, problem)
            return 400, "malformed event"
        token, session_id = session.get("client_reference_id"), session["id"]
    found = service().find(token) if isinstance(token, str) and len(token) <= 255 else None
    if found is None or not isinstance(session_id, str) or not 0 < len(session_id) <= 255:
        log.info("webhook %s %s: no recipient of ours; ignored", event_id, kind)
        return 200, "ignored: not ours"
    if found.ledger.seen_webhook(event_id, kind[:100]):
        return 200, "duplicate"
    try:
        if kind in plan_webhooks.EVENTS:
            plan_webhooks.installment_event(found, kind, session, _when(event))
        elif session.get("mode") == "setup":
            plan_webhooks.setup_session_event(found, kind, session, _when(event))
        else:
            _apply(found, kind, session, _when(event))
    except Exception:
        log.exception("webhook %s %s for session %s failed; the provider will retry", event_id, kind, session_id)
        try:
            found.ledger.forget_webhook(event_id)
        except Exception:  # noqa: BLE001 - the 500 below is what matters now
            log.exception("webhook %s: could not take back its de-duplication mark", event_id)
        return 500, "not handled; retry"
    return 200, "ok"


def _token_and_id(kind: str, obj: Any) -> tuple[str | None, Any]:
    """The recipient's token and the object's id: a session's client_reference_id, a plan charge's metadata."""
    if not isinstance(obj, dict):
        return None, None
    if kind in plan_webhooks.EVENTS:
        found = plan_webhooks.installment_of(obj)
        return (found[0] if found else None), obj.get("id")
    token = obj.get("client_reference_id")
    return (token if isinstance(token, str) else None), obj.get("id")


# What a handled event's session must look like before anything of it is used: field -> allowed types.
_SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "client_reference_id": (str, type(None)), "payment_status": (str, type(None)),
    "metadata": (dict, type(None)), "currency": (str, type(None)), "payment_intent": (str, dict, type(None)),
    "amount_total": (int, type(None)),
}


def _event_problem(event: Any) -> str | None:
    """Why a correctly signed body is not an event this handler can read, or None. The reason names
    fields and types only, never a value: it is logged."""
    if not isinstance(event, dict):
        return f"the event is a JSON {type(event).__name__}, not an object"
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        return "the event has no id (a string of 1 to 255 characters)"
    if not isinstance(kind, str) or not 0 < len(kind) <= 255:
        return "the event has no type (a string of 1 to 255 characters)"
    if kind not in HANDLED and kind not in plan_webhooks.EVENTS:
        return None
    data = event.get("data")
    if not isinstance(data, dict):
        return f"data is {_kind(data)}, not an object"
    if not isinstance(data.get("object"), dict):
        return f"data.object is {_kind(data.get('object'))}, not an object"
    return None


def _session_problem(session: dict[str, Any]) -> str | None:
    """Why a handled event's checkout session cannot be used, or None (fields and types only)."""
    session_id = session.get("id")
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 255:
        return "data.object.id is not a string of 1 to 255 characters"
    for name, types in _SESSION_FIELDS.items():
        value = session.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            return f"data.object.{name} is {_kind(value)}"
    metadata = session.get("metadata") or {}
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        return "data.object.metadata holds something other than strings"
    return None


def _kind(value: Any) -> str:
    return "missing or null" if value is None else f"a {type(value).__name__}"


def _when(event: dict[str, Any]) -> datetime:
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2 ** 35:
        return datetime.fromtimestamp(created, UTC)
    return datetime.now(UTC)


def _apply(found: Found, kind: str, session: dict[str, Any], when: datetime) -> None:
    """Record the session's news on its payment; a good full payment marks the recipient paid and shows it."""
    ledger, recipient = found.ledger, found.recipient
    session_id: str = session["id"]
    status = HANDLED[kind] or ("paid" if session.get("payment_status") == "paid" else "pending")
    existing = ledger.payment(session_id)
    metadata = session.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {}
    option = metadata.get("option") if metadata.get("option") in OPTIONS else \
        (existing["option"] if existing else "full")
    source = metadata.get("source") if metadata.get("source") in SOURCES else \
        (existing["source"] if existing else "other")
    amount, currency, reasons = _checked_amount(found, session, option, metadata)
    provider = existing["provider"] if existing else ("demo" if service().settings.demo_payments else "stripe")
    intent = session.get("payment_intent")
    if isinstance(intent, dict):  # expanded
        intent = intent.get("id")
    ledger.upsert_payment(
        campaign_id=found.campaign.id, token=recipient.token, provider=provider, provider_ref=session_id,
        amount=amount, currency=currency, option=option, source=source, status=status,
        payment_intent=intent if isinstance(intent, str) and 0 < len(intent) <= 255 else None,
        flag_reason="; ".join(reasons)[:500] or None)
    if status != "paid":
        return
    payment = ledger.payment(session_id)
    if payment is None or payment["status"] != "paid":
        return
    if payment["flagged"]:
        log.warning("payment %s is flagged, not trusted: %s", session_id, payment["flag_reason"])
        return
    if payment["option"] != "full":
        plan_webhooks.first_installment_paid(found, session, when)  # the balance stays open: the schedule starts
        return
    ledger.mark_paid(recipient.token, when)
    if not show_paid(found.store, recipient.token):
        log.info("payment %s: no published page to show as paid", session_id)


def _checked_amount(found: Found, session: dict[str, Any], option: str,
                    metadata: dict[str, Any]) -> tuple[int, str, list[str]]:
    """The session's amount and currency as recorded, and every reason not to trust them."""
    recipient, reasons = found.recipient, []
    try:
        expected: int | None = expected_amount(recipient, option, paid_toward(found.ledger.plan_for_token(
            recipient.token)) if option == "full" else 0)
    except PaymentError as exc:
        expected = None
        reasons.append(str(exc))
    amount = session.get("amount_total")
    if not isinstance(amount, int) or isinstance(amount, bool):
        reasons.append("the session has no amount_total")
        amount = expected if expected is not None else 0
    elif not 0 <= amount <= MAX_AMOUNT:
        reasons.append(f"the session's amount_total is outside 0..{MAX_AMOUNT}")
        amount = expected if expected is not None else 0
    currency = str(session.get("currency") or "").upper()
    if not _CURRENCY.fullmatch(currency):
        reasons.append(f"the session's currency {currency[:8]!r} is not an ISO 4217 code")
        currency = recipient.currency
    elif currency != recipient.currency:
        reasons.append(f"currency {currency} differs from the ledger's {recipient.currency}")
    if expected is not None and amount != expected:
        what = "the first installment" if option == "plan" else "the amount due"
        reasons.append(f"amount {amount} {currency} differs from {what}, {expected} {recipient.currency}")
    campaign = metadata.get("campaign")
    if campaign is not None and campaign != found.campaign.id:
        reasons.append(f"metadata names campaign {str(campaign)[:200]!r}, the token belongs to {found.campaign.id!r}")
    return amount, currency, reasons
