"""``billcast collect``: charge every plan installment due by a date, off-session, to the card saved for it.

Each installment is first claimed in the ledger with a conditional update
(``Ledger.claim_installment``), so of two collectors running at once exactly one
charges it; only then is the provider asked. With Stripe that is
``PaymentIntents.create`` with ``off_session`` and ``confirm``, the saved customer
and payment method, and one idempotency key per installment and attempt; with the
demo provider, a signed ``payment_intent.*`` event handed to the webhook's own
code. Either way the outcome comes back as a webhook (``plan_webhooks``), which
marks the installment paid, or the plan ``needs_card`` (or ``broken``).

Runs inside the service app's context (the CLI makes one), so it shares the
service's settings, ledgers, stores and Stripe client.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date

import stripe

from billcast.jobs.campaign import Campaign
from billcast.jobs.ledger import Claim
from billcast.renderer import PaymentError

from . import pay_pages
from .context import service
from .demo_provider import demo_intent_event, send_event
from .payments import stripe_client

log = logging.getLogger("billcast.collect")


@dataclass
class Collected:
    """What one collection did: installments handed to the provider, claimed by another collector, or not
    charged (and why), by ``token…#number``."""

    submitted: list[str] = field(default_factory=list)
    elsewhere: int = 0
    errors: list[str] = field(default_factory=list)


def installment_key(token: str, number: int, attempt: int) -> str:
    """One idempotency key per installment and attempt: a retried request is the same charge, a new card a new one."""
    text = "\n".join(("plan", token, str(number), str(attempt)))
    return "billcast-" + hashlib.sha256(text.encode()).hexdigest()


def _params(campaign: Campaign, claim: Claim) -> dict[str, object]:
    plan, item = claim.plan, claim.installment
    brand = campaign.brand_name or pay_pages.brand(None)
    return {"amount": item.amount, "currency": plan.currency.lower(), "customer": plan.provider_customer,
            "payment_method": plan.payment_method, "off_session": True, "confirm": True,
            "description": f"{brand} payment plan: installment {item.number} of {plan.count}",
            "metadata": {"campaign": campaign.id, "option": "plan", "source": "collect", "token": plan.token,
                         "installment": str(item.number)}}


def _charge_stripe(campaign: Campaign, claim: Claim) -> str:
    """Create and confirm the off-session PaymentIntent; its id (a declined card's too: the webhook says so)."""
    key = installment_key(claim.plan.token, claim.installment.number, claim.installment.attempt)
    try:
        intent = stripe_client().v1.payment_intents.create(params=_params(campaign, claim),
                                                           options={"idempotency_key": key})
        return str(intent.id)
    except stripe.CardError as exc:  # declined or needs the payer: the intent exists, its webhook follows
        declined = getattr(exc.error, "payment_intent", None) if exc.error is not None else None
        if declined is not None and getattr(declined, "id", None):
            return str(declined.id)
        raise PaymentError(f"the card was refused without a payment intent ({exc.code})") from None
    except stripe.StripeError as exc:
        raise PaymentError(f"Stripe refused the charge: {type(exc).__name__} code={exc.code} "
                           f"http_status={exc.http_status} request_id={exc.request_id}") from None


def _charge_demo(campaign: Campaign, claim: Claim) -> str:
    """The demo's charge: the event Stripe would send, signed and handed to the webhook's own code."""
    intent = {"id": "pi_demo_" + secrets.token_hex(12), "object": "payment_intent", **_params(campaign, claim)}
    for key in ("off_session", "confirm", "description"):
        intent.pop(key)
    status, answer = send_event(demo_intent_event(intent))
    if status != 200:
        raise PaymentError(f"the webhook answered {status} {answer}")
    return str(intent["id"])


def collect_due(campaign: Campaign, on: date) -> Collected:
    """Charge every installment of ``campaign`` due by ``on`` whose plan is active; safe to run twice at once."""
    ledger = service().ledger(campaign)
    charge = _charge_demo if service().settings.demo_payments else _charge_stripe
    done = Collected()
    for plan_id, number in ledger.due_installments(campaign.id, on):
        claim = ledger.claim_installment(plan_id, number)
        if claim is None:
            done.elsewhere += 1
            continue
        name = f"{claim.plan.token[:4]}…#{number}"
        if not claim.plan.payment_method:
            ledger.release_installment(plan_id, number)
            done.errors.append(f"{name}: no saved card")
            continue
        try:
            intent = charge(campaign, claim)
        except PaymentError as exc:
            ledger.release_installment(plan_id, number)  # asked again, with the same key, next time
            log.error("collect %s: %s", name, exc)
            done.errors.append(f"{name}: {exc}")
            continue
        ledger.installment_submitted(plan_id, number, intent)
        done.submitted.append(name)
    return done
