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


@blueprint.post("/stripe/webhook")
def stripe_webhook() -> Response:
    status, answer = receive(request.get_data(), request.headers.get("Stripe-Signature"))
    return Response(answer + "\n", status, mimetype="text/plain")


def receive(payload: bytes, signature: str | None) -> tuple[int, str]:
    """Verify and handle one webhook delivery; returns the HTTP status and a short answer.

    400 for a bad signature or body (nothing recorded); 200 for an event handled,
    seen before, or not ours to handle; 500 when handling failed, after taking
    back the event's de-duplication mark so that the provider's retry is handled.
    """
    try:
        stripe.Webhook.construct_event(payload, signature, service().settings.webhook_secret)
        event = json.loads(payload)
    except stripe.SignatureVerificationError:
        log.warning("webhook refused: bad or stale signature")
        return 400, "bad signature"
    except (ValueError, TypeError, AttributeError, KeyError):
        log.warning("webhook refused: not a JSON event")
        return 400, "not a JSON event"
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255 or not isinstance(kind, str):
        return 400, "an event needs an id and a type"
    if kind not in HANDLED and kind not in plan_webhooks.EVENTS:
        return 200, "ignored"
    session = (event.get("data") or {}).get("object") or {}
    token, session_id = _token_and_id(kind, session)
    if kind in plan_webhooks.EVENTS and token is None:
        return 200, "ignored"  # a checkout's own payment intent: its session's events say it all
    found = service().find(token) if isinstance(token, str) else None
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


def _when(event: dict[str, Any]) -> datetime:
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
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
