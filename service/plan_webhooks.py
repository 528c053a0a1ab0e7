"""Payment plans on the webhook side: the schedule when the first installment is paid, each later charge's
outcome, a new card saved; and the page shown in the plan's state after each.

Called by ``webhooks.receive`` once an event is verified, ours, and seen for the
first time. With Stripe, a checkout session names its payment (or setup) intent
by id, and the saved card is read from it through the ``stripe`` library; the
demo provider sends them expanded. See ``docs/PAYMENTS.md``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from billcast.jobs.amounts import minor_units, plan_schedule
from billcast.jobs.ledger import Plan
from billcast.jobs.plans import plan_view
from billcast.jobs.publish import show_paid, show_plan
from billcast.microsite import plan_block

from .context import Found, service
from .payments import stripe_client

log = logging.getLogger("billcast.webhooks")

EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")  # a later installment's charge


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def installment_of(intent: dict[str, Any]) -> tuple[str, int] | None:
    """The token and installment number an off-session charge was made for (``billcast collect`` puts them in its
    metadata); None for any other payment intent, such as the one a checkout session made itself."""
    metadata = intent.get("metadata")
    if not isinstance(metadata, dict):
        return None
    token, number = metadata.get("token"), metadata.get("installment")
    if not isinstance(token, str) or not isinstance(number, str) or not number.isdigit() or len(number) > 3:
        return None
    return token, int(number)


def _expanded(found: Found, value: Any, kind: str) -> dict[str, Any]:
    """A payment or setup intent as an object: as sent (the demo), else fetched from Stripe by its id."""
    if isinstance(value, dict):
        return value
    if not _text(value) or service().settings.demo_payments:
        return {}
    api = stripe_client().v1
    fetched = (api.payment_intents if kind == "payment" else api.setup_intents).retrieve(value)
    return {"id": fetched.id, "customer": getattr(fetched, "customer", None),
            "payment_method": getattr(fetched, "payment_method", None)}


def _card(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """(customer, payment method) ids of an intent; a customer or method expanded to an object gives its id."""
    ids = []
    for key in ("customer", "payment_method"):
        value = obj.get(key)
        ids.append(_text(value.get("id") if isinstance(value, dict) else value))
    return ids[0], ids[1]


def first_installment_paid(found: Found, session: dict[str, Any], when: datetime) -> None:
    """Make the plan's schedule (once), with the card the first installment was paid with, and show it."""
    ledger, recipient = found.ledger, found.recipient
    if ledger.plan_for_token(recipient.token) is not None or not recipient.plan_installments:
        return
    customer, method = _card(_expanded(found, session.get("payment_intent"), "payment"))
    customer = customer or _text(session.get("customer"))
    total = minor_units(recipient.amount_due, recipient.currency)
    schedule = plan_schedule(total, recipient.plan_installments, recipient.plan_first_due or when.date())
    plan = ledger.start_plan(campaign_id=found.campaign.id, token=recipient.token,
                             provider="demo" if service().settings.demo_payments else "stripe",
                             provider_customer=customer, payment_method=method, currency=recipient.currency,
                             schedule=schedule, first_payment=session["id"], paid_at=when)
    if method is None:
        log.warning("plan %s…: the first installment's card could not be read; the plan waits for a new card",
                    recipient.token[:4])
    show(found, plan, when)


def installment_event(found: Found, kind: str, intent: dict[str, Any], when: datetime) -> None:
    """An off-session charge succeeded or failed: recorded as a payment, and the plan moved on."""
    ledger, recipient = found.ledger, found.recipient
    token, number = installment_of(intent) or (recipient.token, 0)
    plan = ledger.plan_for_token(token)
    item = next((i for i in plan.installments if i.number == number), None) if plan else None
    amount, currency = intent.get("amount"), str(intent.get("currency") or "").upper()
    reasons = []
    metadata = intent.get("metadata") or {}
    if metadata.get("campaign") != found.campaign.id:
        reasons.append(f"metadata names campaign {str(metadata.get('campaign'))[:200]!r}, the token belongs to "
                       f"{found.campaign.id!r}")
    if item is None or plan is None:
        reasons.append(f"no installment {number} of a plan for this token")
    elif amount != item.amount or currency != plan.currency:
        reasons.append(f"amount {amount} {currency[:8]} differs from installment {number}, "
                       f"{item.amount} {plan.currency}")
    succeeded = kind == "payment_intent.succeeded"
    ledger.upsert_payment(
        campaign_id=found.campaign.id, token=token, provider=plan.provider if plan else "stripe",
        provider_ref=intent["id"], amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else 0,
        currency=currency if len(currency) == 3 and currency.isalpha() else recipient.currency, option="plan",
        source="collect", status="paid" if succeeded else "failed", payment_intent=intent["id"],
        flag_reason="; ".join(reasons)[:500] or None, installment=number or None)
    if reasons:
        log.warning("installment charge %s is flagged, not trusted: %s", intent["id"], reasons[0])
        return
    if succeeded:
        moved = ledger.installment_paid(token, number, intent["id"], when)
    else:
        error = intent.get("last_payment_error")
        code = _text(error.get("decline_code") or error.get("code")) if isinstance(error, dict) else None
        moved = ledger.installment_failed(token, number, intent["id"], code, found.campaign.plan_max_failures)
        log.info("plan %s…: installment %d failed (%s)", token[:4], number, code or "no code")
    if moved is not None:
        show(found, moved, when)


def setup_session_event(found: Found, kind: str, session: dict[str, Any], when: datetime) -> None:
    """A setup session (a new card for the plan): completed saves the card; expired is only recorded."""
    ledger, recipient = found.ledger, found.recipient
    completed = kind == "checkout.session.completed"
    opened = ledger.payment(session["id"])
    ledger.upsert_payment(
        campaign_id=found.campaign.id, token=recipient.token,
        provider=opened["provider"] if opened else ("demo" if service().settings.demo_payments else "stripe"),
        provider_ref=session["id"], amount=0, currency=recipient.currency, option="card",
        source=opened["source"] if opened else "other", status="saved" if completed else "expired")
    if not completed:
        return
    customer, method = _card(_expanded(found, session.get("setup_intent"), "setup"))
    if method is None:
        log.warning("setup session %s: no payment method in its setup intent", session["id"])
        return
    plan = ledger.card_saved(recipient.token, method, customer or _text(session.get("customer")))
    if plan is not None:
        show(found, plan, when)


def show(found: Found, plan: Plan, when: datetime) -> None:
    """Put the page in the plan's state: the paid page once every installment is paid, else the plan's card."""
    token = found.recipient.token
    if plan.status == "completed":
        found.ledger.mark_paid(token, when)
        show_paid(found.store, token)
        return
    view = plan_view(plan)
    if view is not None:
        show_plan(found.store, token,
                  lambda lang: plan_block(view, lang=lang, pay_url=found.campaign.pay_url, token=token))
