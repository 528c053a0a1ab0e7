"""``/r/<token>/optout``: stop a campaign's messages from the recipient's page, an email link, or one click.

``GET`` shows one button in the recipient's language (no script, no sign-in);
``POST`` records the opt-out in the ledger (customer, the campaign's channel,
the campaign, the time: nothing else) and says it is done. The same ``POST``
with the body ``List-Unsubscribe=One-Click`` is RFC 8058's one-click opt-out
from a mail provider: 200, never a redirect. Doing it twice changes nothing.
Every later campaign skips the customer; their page stays open and payable
until it expires. See ``docs/COMPLIANCE.md``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from billcast.jobs.ledger import LedgerError

from .context import Found
from .forms import found_or_404, from_another_site, limit_body, own_page, refused

blueprint = Blueprint("optout", __name__, template_folder="templates")
log = logging.getLogger("billcast.optout")
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _page(found: Found, done: bool) -> Response:
    return own_page(found, "pay/optout.html", "optout.opt_out", title="Opt-out", done=done)


@blueprint.get("/r/<token>/optout")
def confirm(token: str) -> Response:
    """The confirmation page (or, for someone already opted out, the page that says so)."""
    found = found_or_404(token)
    done = found.ledger.suppression(found.recipient.customer_id, found.campaign.channel) is not None
    return _page(found, done)


@blueprint.post("/r/<token>/optout")
def opt_out(token: str) -> Response:
    """Record the opt-out: from the confirmation page's form, or RFC 8058's one-click POST."""
    limit_body()
    found = found_or_404(token)
    one_click = request.form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click:
        if request.form.get("confirm") != "1":
            return refused(400, "Bad Request: confirm: must be 1 (the opt-out page's button), or post "
                                "List-Unsubscribe=One-Click")
        if from_another_site():
            return refused(403, "Forbidden: the opt-out is confirmed from its own page")
    try:
        new = found.ledger.suppress(customer_id=found.recipient.customer_id, channel=found.campaign.channel,
                                    reason="optout", source="one_click" if one_click else "page",
                                    campaign_id=found.campaign.id)
    except LedgerError as exc:
        log.error("opt-out %s…: not recorded: %s", token[:4], exc)
        return refused(503, "Service Unavailable: try again in a moment")
    if new:
        log.info("opt-out recorded: campaign %s, token %s…, %s", found.campaign.id, token[:4],
                 "one-click" if one_click else "page")
    return _page(found, done=True)
