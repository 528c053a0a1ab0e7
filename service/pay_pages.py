"""The short pages the pay side answers with (expired, paid, nothing due, provider errors, the demo checkout):
branded, with a per-response nonce for their one style block and a strict CSP. The opt-out and dispute pages
use the same frame in the recipient's own language (:func:`local`)."""

from __future__ import annotations

import secrets
from base64 import b64encode
from decimal import Decimal
from functools import cache
from typing import Any

from babel.numbers import format_currency
from flask import Response, render_template
from markupsafe import Markup

from billcast.microsite import load_catalogs, origin, page_language, page_link, static_files

from .context import Found


def brand(found: Found | None) -> str:
    """The campaign's brand name, else the page catalogue's."""
    return (found.campaign.brand_name if found else None) or _catalog_brand()


@cache
def _catalog_brand() -> str:
    return load_catalogs().messages("en").plain("brand")


def money(amount: int, currency: str, digits: int) -> str:
    return format_currency(Decimal(amount).scaleb(-digits), currency, locale="en")


@cache
def _logo() -> str:
    data = static_files()["static/logo.png"]
    return "data:image/png;base64," + b64encode(data).decode()


def render(template: str, status: int, found: Found | None, **context: Any) -> Response:
    """A service page: the brand, a per-response nonce for its one style block, a strict CSP."""
    nonce = secrets.token_urlsafe(16)
    public = found.campaign.public_url if found else ""
    contact = ""
    if found is not None:
        contact = (found.campaign.contact_url or f"{public}/contact").replace("{token}", found.recipient.token)
    html = render_template(template, nonce=nonce, brand=brand(found), logo=_logo(), contact=contact, **context)
    response = Response(html, status, mimetype="text/html")
    forms = " ".join(dict.fromkeys(["'self'", origin(public)] if public else ["'self'"]))
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; form-action {forms}; "
        "base-uri 'none'; frame-ancestors 'none'")
    response.headers["Cache-Control"] = "no-store"
    return response


_MESSAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # kind: (tone, title, paragraphs)
    "expired": ("warn", "This link has expired", (
        "The link to your bill was open for a limited time, and that time has passed. Nothing was charged.",
        "To pay, or to get a new link, contact us: we will tell you what is still due.")),
    "paid": ("ok", "Paid – thank you", (
        "We have received your payment. There is nothing more to pay on this bill.",
        "You do not need to do anything else.")),
    "plan_started": ("ok", "Your payment plan has started – thank you", (
        "We have received the first installment of your payment plan.",
        "The next installments are charged to the same card on their due dates; we will remind you before each "
        "one. You do not need to pay again from this link.")),
    "nothing_due": ("ok", "There is nothing to pay", (
        "This bill has nothing left to pay.",)),
    "no_plan": ("warn", "No payment plan for this bill", (
        "This bill has no payment plan on offer, so it cannot be paid in installments from this link.",
        "You can pay it in full, or contact us to talk about a plan.")),
    "processing": ("ok", "Your payment is being confirmed", (
        "We have your payment details and are confirming the payment. This takes a moment.",
        "Your page will show the payment once it is confirmed.")),
    "unavailable": ("error", "We cannot take this payment online", (
        "Something about this bill stops us from taking the payment online. Nothing was charged.",
        "Please contact us and we will sort it out.")),
    "provider_error": ("error", "Payment is not available right now", (
        "We could not reach our payment provider. Nothing was charged.",
        "Please try again in a few minutes.")),
    "plan_needs_card": ("warn", "Your payment plan needs a new card", (
        "We could not charge your card for an installment of your payment plan. Nothing more was charged.",
        "Save a new card: the installment is charged to it on the next collection day.")),
    "plan_stopped": ("warn", "Your payment plan has stopped", (
        "The payments of your payment plan failed, so the plan has stopped. The installments already paid count.",
        "You can pay what is still open in full, or contact us to talk about it.")),
    "no_card": ("warn", "There is no card to update", (
        "This bill has no payment plan waiting for a new card.",)),
    "session_expired": ("warn", "This checkout has expired", (
        "This checkout was open for a limited time. Nothing was charged.",
        "Go back to your page to pay.")),
}


def local(found: Found) -> dict[str, Any]:
    """What a page in the recipient's language needs: ``lang``, ``dir`` and ``t`` (the page catalogue's texts,
    in the language the recipient's page was published in, else the campaign's default)."""
    messages, fmt, lang, direction = page_language(found.recipient.locale or found.campaign.default_locale)

    def t(key: str, count: int | None = None, **values: Any) -> Markup:
        return messages.text(key, count, fmt, **values)

    return {"lang": lang, "dir": direction, "t": t}


def message(found: Found, kind: str, status: int, *, full: str | None = None, retry: str | None = None,
            card: str | None = None) -> Response:
    """One of the short pages the pay link can answer with, by ``kind`` (see ``_MESSAGES``)."""
    tone, title, paragraphs = _MESSAGES[kind]
    page = None if kind == "expired" else page_link(found.campaign.public_url, found.recipient.token)
    return render("pay/pay_message.html", status, found, title=title, tone=tone, paragraphs=paragraphs,
                   page=page, full=full, retry=retry, card=card)
