"""``/r/<token>/dispute``: the debtor disputes the amount from their page.

``GET`` shows a short form in the recipient's language: a reason from a list
and, if they wish, up to 500 characters of their own words. ``POST`` stores it
in the ledger (never sent to the payment provider, never logged) and from then
on the customer gets no collection message until the dispute is resolved
(``billcast disputes resolve``). The pay buttons stay: they may still pay. See
``docs/COMPLIANCE.md``.
"""

from __future__ import annotations

import logging
import unicodedata

from flask import Blueprint, Response, request

from billcast.jobs.ledger import DISPUTE_DETAILS_MAX, DISPUTE_REASONS, LedgerError

from .context import Found
from .forms import found_or_404, from_another_site, limit_body, own_page, refused
from .pay_pages import local

blueprint = Blueprint("disputes", __name__, template_folder="templates")
log = logging.getLogger("billcast.disputes")
_KEPT_CONTROLS = frozenset("\n\t")


def _page(found: Found, status: int = 200, **context: object) -> Response:
    values = {"done": False, "already": False, "errors": {}, "chosen": None, "details": ""} | context
    return own_page(found, "pay/dispute.html", "disputes.submit", status, title="Dispute", reasons=DISPUTE_REASONS,
                    max=DISPUTE_DETAILS_MAX, **values)


def clean_details(text: str) -> str | None:
    """The debtor's words as kept: line ends as ``\\n``, no other control characters, trimmed; None if empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in _KEPT_CONTROLS or unicodedata.category(ch) != "Cc").strip()
    return text or None


@blueprint.get("/r/<token>/dispute")
def form(token: str) -> Response:
    found = found_or_404(token)
    state = found.ledger.contact_state(found.recipient.customer_id, found.campaign.channel,
                                       campaign_id=found.campaign.id)
    if state.dispute is not None:
        return _page(found, done=True, already=True)
    return _page(found)


@blueprint.post("/r/<token>/dispute")
def submit(token: str) -> Response:
    """Check and store the dispute; the form again with what to fix (400) when a field is wrong."""
    limit_body()
    found = found_or_404(token)
    if from_another_site():
        return refused(403, "Forbidden: a dispute is sent from its own page")
    reason, details = request.form.get("reason"), clean_details(request.form.get("details", ""))
    t = local(found)["t"]
    errors = {}
    if reason not in DISPUTE_REASONS:
        errors["reason"] = t("dispute_error_reason")
    if details is not None and len(details) > DISPUTE_DETAILS_MAX:
        errors["details"] = t("dispute_error_details", max=DISPUTE_DETAILS_MAX, written=len(details))
    if errors:
        return _page(found, 400, errors=errors, chosen=reason if reason in DISPUTE_REASONS else None,
                     details=details or "")
    try:
        _, opened = found.ledger.open_dispute(campaign_id=found.campaign.id, customer_id=found.recipient.customer_id,
                                              token=token, reason=str(reason), details=details)
    except LedgerError as exc:
        log.error("dispute %s…: not recorded: %s", token[:4], type(exc).__name__)
        return refused(503, "Service Unavailable: try again in a moment")
    if opened:
        log.info("dispute opened: campaign %s, token %s…, reason %s", found.campaign.id, token[:4], reason)
    return _page(found, done=True, already=not opened)
