"""The demo payment provider, used when no Stripe key is configured: a local checkout page whose "Pay"
sends the service a ``checkout.session.completed`` webhook signed exactly as Stripe signs one, handled by
the very code that handles Stripe's (``webhooks.receive``). It charges nothing and says so.

For a payment plan it plays the saved card too: the payer picks a card that works or one that will be
declined later (the choice lives in the demo payment method's id), ``billcast collect`` charges it through
:func:`demo_intent_event`, and "update your card" opens the same page in setup mode."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from babel.numbers import get_currency_precision
from flask import Blueprint, Response, abort, redirect, request

from billcast.jobs.amounts import minor_units
from billcast.microsite import page_link

from .context import Found, service
from .pay_pages import message, money, render
from .payments import Checkout, checkout_label, return_urls
from . import webhooks

blueprint = Blueprint("demo", __name__)
log = logging.getLogger("billcast.payments")


@dataclass(frozen=True)
class _DemoSession:
    found: Found
    payment: dict[str, Any]

    @property
    def checkout(self) -> Checkout:
        """The session as it was opened, from its ledger row."""
        p, recipient = self.payment, self.found.recipient
        count = recipient.plan_installments if p["option"] == "plan" else None
        success, cancel = return_urls(self.found.campaign.public_url, recipient.token)
        plan = self.found.ledger.plan_for_token(recipient.token) if p["option"] == "card" else None
        return Checkout(campaign_id=p["campaign_id"], token=p["token"], option=p["option"], source=p["source"],
                        amount=p["amount"], currency=p["currency"], installments=count,
                        label=checkout_label(self.found, p["option"], count),
                        expires_at=p["expires_at"] or datetime.now(UTC), key=p["idempotency_key"] or "",
                        success_url=success, cancel_url=cancel, customer=plan.provider_customer if plan else None)


def _demo_session(session_id: str) -> _DemoSession:
    """The demo session by id, or 404 (also whenever a real provider is configured)."""
    svc = service()
    if not svc.settings.demo_payments or not session_id.startswith("cs_demo_"):
        abort(404)
    for campaign in svc.campaigns:
        payment = svc.ledger(campaign).payment(session_id)
        if payment is not None and payment["provider"] == "demo" and payment["campaign_id"] == campaign.id:
            found = svc.find(payment["token"])
            if found is not None:
                return _DemoSession(found, payment)
    abort(404)


@blueprint.get("/demo/checkout/<session_id>")
def checkout(session_id: str) -> Response:
    """The demo's stand-in for Stripe Checkout: the amount, what it is for, Pay and Cancel."""
    demo = _demo_session(session_id)
    checkout = demo.checkout
    if demo.payment["status"] in ("paid", "saved"):
        return redirect(checkout.success_url, 303)
    if demo.payment["status"] != "pending" or checkout.expires_at <= datetime.now(UTC):
        return message(demo.found, "session_expired", 410)
    digits = get_currency_precision(checkout.currency)
    total = minor_units(demo.found.recipient.amount_due, demo.found.recipient.currency)
    return render("pay/pay_checkout.html", 200, demo.found, title="Checkout (demo)",
                   checkout=checkout, session_id=session_id,
                   amount=money(checkout.amount, checkout.currency, digits),
                   total=money(total, checkout.currency, digits),
                   page=page_link(demo.found.campaign.public_url, checkout.token),
                   expires=checkout.expires_at.strftime("%H:%M UTC"))


@blueprint.post("/demo/checkout/<session_id>")
def checkout_action(session_id: str) -> Response:
    """"Pay": a signed ``checkout.session.completed`` through the real webhook path; "Cancel": back to the page."""
    demo = _demo_session(session_id)
    checkout = demo.checkout
    if request.form.get("action") != "pay":
        return redirect(checkout.cancel_url, 303)
    if demo.payment["status"] in ("paid", "saved"):
        return redirect(checkout.success_url, 303)
    if demo.payment["status"] != "pending" or checkout.expires_at <= datetime.now(UTC):
        return message(demo.found, "session_expired", 410)
    declines = request.form.get("card") == "declines"
    status, answer = send_event(demo_event(session_id, checkout, declines=declines))
    if status != 200:
        log.error("demo checkout %s: the webhook answered %s %s", session_id, status, answer)
        return message(demo.found, "provider_error", 502, retry=request.path)
    return redirect(checkout.success_url, 303)


def send_event(event: dict[str, Any]) -> tuple[int, str]:
    """Sign an event as Stripe does and hand it to the webhook's own code; its status and answer."""
    payload = json.dumps(event, separators=(",", ":"))
    header = stripe.WebhookSignature.generate_signature_header(payload, service().settings.webhook_secret)
    return webhooks.receive(payload.encode(), header)


def _card(declines: bool) -> str:
    """A demo payment method: one that works, or one every later charge of which is declined."""
    return ("pm_demo_declines_" if declines else "pm_demo_") + secrets.token_hex(8)


def card_declines(payment_method: str | None) -> bool:
    return bool(payment_method) and str(payment_method).startswith("pm_demo_declines_")


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_demo_" + secrets.token_hex(12), "object": "event", "api_version": stripe.api_version,
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": kind,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def demo_event(session_id: str, checkout: Checkout, *, declines: bool = False) -> dict[str, Any]:
    """A ``checkout.session.completed`` event as Stripe sends one for a card paid at once (or saved, for a new
    card). Unlike Stripe's, the payment or setup intent comes expanded: the demo has no API to fetch it from."""
    created = int(time.time())
    session: dict[str, Any] = {
        "id": session_id, "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": "paid", "client_reference_id": checkout.token,
        "amount_subtotal": checkout.amount, "amount_total": checkout.amount,
        "currency": checkout.currency.lower(), "metadata": checkout.metadata,
        "payment_intent": "pi_demo_" + secrets.token_hex(12), "created": created, "livemode": False,
        "expires_at": int(checkout.expires_at.timestamp()),
        "success_url": checkout.success_url, "cancel_url": checkout.cancel_url,
    }
    if checkout.option == "plan":  # the card is saved on a demo customer, for billcast collect
        customer = "cus_demo_" + secrets.token_hex(8)
        session |= {"customer": customer, "payment_intent": {
            "id": session["payment_intent"], "object": "payment_intent", "customer": customer,
            "payment_method": _card(declines), "status": "succeeded"}}
    elif checkout.option == "card":
        customer = checkout.customer or "cus_demo_" + secrets.token_hex(8)
        session |= {"mode": "setup", "payment_status": "no_payment_required", "amount_subtotal": None,
                    "amount_total": None, "payment_intent": None, "customer": customer, "setup_intent": {
                        "id": "seti_demo_" + secrets.token_hex(12), "object": "setup_intent", "customer": customer,
                        "payment_method": _card(declines), "status": "succeeded"}}
    return _event("checkout.session.completed", session)


def demo_intent_event(intent: dict[str, Any]) -> dict[str, Any]:
    """What Stripe sends about an off-session charge: ``payment_intent.succeeded``, or ``payment_failed`` when
    the demo card declines (as a real card would, with ``card_declined``)."""
    if card_declines(intent.get("payment_method")):
        failed = intent | {"status": "requires_payment_method", "last_payment_error": {
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}}
        return _event("payment_intent.payment_failed", failed)
    return _event("payment_intent.succeeded", intent | {"status": "succeeded", "amount_received": intent["amount"]})
