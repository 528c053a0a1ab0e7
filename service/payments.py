"""Taking a payment: ``GET /pay/<token>`` opens a checkout session at click time and sends the payer to it.

The amount comes from the ledger by the token, never from the link. With a
Stripe key the session is a Stripe Checkout Session made through the ``stripe``
library; without one (the demo) it is a local checkout page, ``/demo/checkout/<id>``,
whose "Pay" button sends the service a webhook signed exactly as Stripe signs
one, handled by the very code that handles Stripe's (``demo_provider``).

Nothing personal goes to the provider: the session carries the token (as
``client_reference_id``), the campaign id, the option and the source, a neutral
product label and the amount. See ``docs/PAYMENTS.md``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import stripe
from flask import Blueprint, Response, abort, current_app, redirect, request, url_for

from billcast.jobs.amounts import expected_amount
from billcast.jobs.ledger import LedgerError, Plan
from billcast.jobs.plans import paid_toward
from billcast.renderer import PaymentError

from billcast.microsite import PAY_OPTIONS, SOURCES, page_link
from . import pay_pages
from .access import hashed
from .context import Found, service
from .pay_pages import message

blueprint = Blueprint("payments", __name__, template_folder="templates")
log = logging.getLogger("billcast.payments")

SESSION_LIFETIME = timedelta(hours=1)  # Stripe allows 30 minutes to 24 hours
REUSE_MARGIN = timedelta(minutes=10)  # an open session with less time left than this is not handed out again
NETWORK_RETRIES = 2  # a StripeClient retries nothing unless told; retries reuse the idempotency key
_STRIPE_CLIENT = "billcast.stripe"  # where the app keeps its one StripeClient (app.extensions)


def idempotency_key(token: str, option: str, amount: int, currency: str, day: date, attempt: int = 0) -> str:
    """The key a session is created with: the same click on the same UTC day gives the same key.

    ``attempt`` counts the sessions made before for the same token, option and
    amount that day (a new session once the last one has expired or closed).
    """
    text = "\n".join((token, option, str(amount), currency, day.isoformat(), str(attempt)))
    return "billcast-" + hashlib.sha256(text.encode()).hexdigest()


# --- one checkout session, described ------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    """A checkout session to open: everything its parameters are made of (no personal data)."""

    campaign_id: str
    token: str
    option: str
    source: str
    amount: int  # minor units
    currency: str
    installments: int | None  # the plan's, for option "plan"
    label: str
    expires_at: datetime
    key: str
    success_url: str
    cancel_url: str
    customer: str | None = None  # option "card": the provider's customer the plan's card is saved on

    @property
    def metadata(self) -> dict[str, str]:
        return {"campaign": self.campaign_id, "option": self.option, "source": self.source}

    def params(self) -> dict[str, Any]:
        """The Stripe ``checkout.sessions.create`` parameters."""
        if self.option == "card":  # a new card for the plan: a setup session, nothing charged
            return {"mode": "setup", "currency": self.currency.lower(), "customer": self.customer,
                    "client_reference_id": self.token, "metadata": self.metadata,
                    "setup_intent_data": {"metadata": self.metadata}, "expires_at": int(self.expires_at.timestamp()),
                    "success_url": self.success_url, "cancel_url": self.cancel_url}
        intent: dict[str, Any] = {"metadata": self.metadata}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": self.currency.lower(), "unit_amount": self.amount,
                "product_data": {"name": self.label}}}],
            "client_reference_id": self.token,
            "metadata": self.metadata,
            "payment_intent_data": intent,
            "expires_at": int(self.expires_at.timestamp()),
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
        }
        if self.option == "plan":
            # Save the card for the later installments, charged off-session on their due dates.
            intent["setup_future_usage"] = "off_session"
            params["customer_creation"] = "always"
        return params


def checkout_label(found: Found, option: str, count: int | None) -> str:
    """The neutral product name the provider shows: the brand and what is paid, nothing personal."""
    brand = pay_pages.brand(found)
    if option == "plan":
        return f"{brand} payment plan: first installment of {count}"
    if option == "card":
        return f"{brand} payment plan: a new card"
    return f"{brand} bill payment"


def return_urls(public_url: str, token: str) -> tuple[str, str]:
    """Where the provider sends the payer back: the page, marked paid or cancelled."""
    page = page_link(public_url, token)
    return f"{page}?paid=1", f"{page}?cancelled=1"


def _plan(found: Found, option: str, source: str, amount: int, provider: str, now: datetime,
          history: list[dict[str, Any]]) -> Checkout:
    """The session to open for this click: the open one again (same key, same parameters), else a new one."""
    recipient = found.recipient
    success, cancel = return_urls(found.campaign.public_url, recipient.token)
    count = recipient.plan_installments if option == "plan" else None
    same = [p for p in history
            if (p["provider"], p["option"], p["amount"], p["currency"]) == (provider, option, amount,
                                                                          recipient.currency)]
    checkout = Checkout(campaign_id=found.campaign.id, token=recipient.token, option=option, source=source,
                        amount=amount, currency=recipient.currency, installments=count,
                        label=checkout_label(found, option, count), expires_at=now, key="",
                        success_url=success, cancel_url=cancel)
    for earlier in reversed(same):
        if (earlier["status"] == "pending" and earlier["idempotency_key"] and earlier["expires_at"] is not None
                and earlier["expires_at"] > now + REUSE_MARGIN):
            return replace(checkout, source=earlier["source"], expires_at=earlier["expires_at"],
                           key=earlier["idempotency_key"])
    today = sum(1 for p in same if p["idempotency_key"] and p["created_at"].astimezone(UTC).date() == now.date())
    # Whole minutes: a double click within the minute sends the very same parameters with the same key.
    expires = now.replace(second=0, microsecond=0) + SESSION_LIFETIME
    return replace(checkout, expires_at=expires,
                   key=idempotency_key(recipient.token, option, amount, recipient.currency, now.date(), today))


# --- GET /pay/<token> ---------------------------------------------------------------------------


@blueprint.get("/pay/<token>")
def pay(token: str) -> Response:
    """Send the payer to a checkout session for what they owe (or say why not)."""
    option, source = request.args.get("option"), request.args.get("src")
    for name, value, allowed in (("option", option, PAY_OPTIONS), ("src", source, SOURCES)):
        if value not in allowed:  # a link we made always has both: this one was cut or changed
            given = "missing" if value is None else "not one of them"
            abort(400, f"{name}: must be one of {', '.join(allowed)} ({given})")
    found = service().find(token)
    if found is None:
        abort(404)
    recipient, now = found.recipient, datetime.now(UTC)
    if recipient.status == "expired" or (recipient.expires_at is not None and recipient.expires_at <= now):
        return message(found, "expired", 410)
    plan = found.ledger.plan_for_token(token)
    if recipient.paid_at is None and plan is not None and plan.status in ("active", "needs_card"):
        if option == "card":
            return _open_card(found, plan, source, now)
        if plan.status == "needs_card":
            return message(found, "plan_needs_card", 200, card=_pay_path(token, "card", source))
        return message(found, "plan_started", 200)
    if option == "card":
        return message(found, "no_card", 400)
    history = found.ledger.payments_for_token(token)
    settled = [p for p in history if p["status"] == "paid" and not p["flagged"]
               and (plan is None or p["option"] != "plan")]  # a stopped plan's installments settle nothing
    if recipient.paid_at is not None or settled:
        started = recipient.paid_at is None and all(p["option"] == "plan" for p in settled)
        return message(found, "plan_started" if started else "paid", 200)
    if recipient.amount_due <= 0:
        return message(found, "nothing_due", 200)
    if option == "plan" and (not recipient.plan_installments or plan is not None):
        return message(found, "no_plan" if plan is None else "plan_stopped", 400,
                       full=_pay_path(token, "full", source))
    try:
        amount = expected_amount(recipient, option, paid_toward(plan))
    except PaymentError as exc:
        log.error("pay %s: cannot charge: %s", hashed(token), exc)
        return message(found, "unavailable", 500)
    if request.method == "HEAD":  # a link checker: opens no session
        return Response(status=200)
    provider = "demo" if service().settings.demo_payments else "stripe"
    checkout = _plan(found, option, source, amount, provider, now, history)
    if provider == "demo":
        return _open_demo(found, checkout, history)
    return _open_stripe(found, checkout, now)


def _open_card(found: Found, plan: Plan, source: str, now: datetime) -> Response:
    """A setup session that saves a new card for the plan (nothing is charged; the next collection uses it)."""
    if request.method == "HEAD":
        return Response(status=200)
    provider = "demo" if service().settings.demo_payments else "stripe"
    history = found.ledger.payments_for_token(found.recipient.token)
    checkout = replace(_plan(found, "card", source, 0, provider, now, history), customer=plan.provider_customer)
    if provider == "demo":
        return _open_demo(found, checkout, history)
    return _open_stripe(found, checkout, now)


def _pay_path(token: str, option: str, source: str) -> str:
    return f"{url_for('payments.pay', token=token)}?{urlencode({'option': option, 'src': source})}"


# --- Stripe -------------------------------------------------------------------------------------


def stripe_client() -> stripe.StripeClient:
    """The app's one Stripe client (its HTTP connections are reused), made on first use."""
    client = current_app.extensions.get(_STRIPE_CLIENT)
    if client is None:
        settings = service().settings
        if not settings.stripe_api_key:
            raise PaymentError("stripe_api_key: not set; the demo provider takes payments without one")
        bases = {"base_addresses": {"api": settings.stripe_api_base}} if settings.stripe_api_base else {}
        made = stripe.StripeClient(settings.stripe_api_key, max_network_retries=NETWORK_RETRIES, **bases)
        client = current_app.extensions.setdefault(_STRIPE_CLIENT, made)
    return client


def _create_session(checkout: Checkout) -> tuple[Any, Checkout]:
    """``checkout.sessions.create``, and the checkout as sent (its key may have changed).

    A key Stripe refuses for other parameters (400) gets a fresh one, once. That
    happens only when a session was made but never recorded (the service
    stopped in between) and the click comes back with another ``expires_at``.
    A key still in use by a simultaneous click (409, once the client's retries
    are spent) is kept: the error page's retry then gets that click's session.
    """
    sessions = stripe_client().v1.checkout.sessions
    try:
        return sessions.create(params=checkout.params(), options={"idempotency_key": checkout.key}), checkout
    except stripe.IdempotencyError:  # a 400; Stripe's 409 (the key still in flight) is an APIError: kept
        log.warning("pay %s: idempotency key reused with other parameters; making a new session",
                    hashed(checkout.token))
        checkout = replace(checkout, key=f"{checkout.key}-{int(time.time())}")
        return sessions.create(params=checkout.params(), options={"idempotency_key": checkout.key}), checkout


def _open_stripe(found: Found, checkout: Checkout, now: datetime) -> Response:
    try:
        session, checkout = _create_session(checkout)
        if getattr(session, "url", None) is None and getattr(session, "status", None) == "expired":
            _record(found, checkout, session.id, "stripe", status="expired")  # closed early: open another
            checkout = replace(checkout, expires_at=now.replace(second=0, microsecond=0) + SESSION_LIFETIME,
                               key=f"{checkout.key}-{int(time.time())}")
            session, checkout = _create_session(checkout)
    except stripe.StripeError as exc:
        log.error("pay %s: Stripe refused the checkout session: %s code=%s http_status=%s request_id=%s",
                  hashed(checkout.token), type(exc).__name__, exc.code, exc.http_status, exc.request_id)
        return message(found, "provider_error", 502, retry=_pay_path(checkout.token, checkout.option,
                                                                     checkout.source))
    _record(found, checkout, session.id, "stripe")
    url = getattr(session, "url", None)
    if not url:  # complete already: the webhook is on its way
        return message(found, "processing", 200)
    return redirect(url, 303)


def _record(found: Found, checkout: Checkout, session_id: str, provider: str, *, status: str = "pending") -> None:
    """The session as a pending payment; a ledger that fails here is logged (the webhook records it anyway)."""
    try:
        found.ledger.upsert_payment(
            campaign_id=checkout.campaign_id, token=checkout.token, provider=provider, provider_ref=session_id,
            amount=checkout.amount, currency=checkout.currency, option=checkout.option, source=checkout.source,
            status=status, expires_at=checkout.expires_at, idempotency_key=checkout.key)
    except LedgerError as exc:
        log.error("pay %s: session %s not recorded: %s", hashed(checkout.token), session_id, exc)


# --- the demo provider --------------------------------------------------------------------------


def _open_demo(found: Found, checkout: Checkout, history: list[dict[str, Any]]) -> Response:
    """The demo session made with this click's key: the one recorded first, however many clicks race to it."""
    existing = next((p for p in history
                     if p["idempotency_key"] == checkout.key and p["provider"] == "demo"), None)
    session_id = existing["provider_ref"] if existing else None
    if session_id is None:
        try:
            session_id = found.ledger.open_checkout(
                campaign_id=checkout.campaign_id, token=checkout.token, provider="demo",
                provider_ref="cs_demo_" + secrets.token_hex(12), amount=checkout.amount, currency=checkout.currency,
                option=checkout.option, source=checkout.source, expires_at=checkout.expires_at,
                idempotency_key=checkout.key)
        except LedgerError as exc:
            log.error("pay %s: demo session not recorded: %s", hashed(checkout.token), exc)
            return message(found, "provider_error", 502, retry=_pay_path(checkout.token, checkout.option,
                                                                         checkout.source))
    return redirect(url_for("demo.checkout", session_id=session_id), 303)
