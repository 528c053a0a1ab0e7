"""``billcast expire``: take down the pages of recipients whose links have outlived the campaign's ``link_days``."""

from __future__ import annotations

import datetime as dt

from ..campaign import Campaign
from ..ledger import Ledger
from ..publish import unpublish
from ..store import open_store


def expire_campaign(campaign: Campaign, *, now: dt.datetime | None = None) -> int:
    """Take down the pages of recipients past their link lifetime and mark them expired; return how many."""
    now = now or dt.datetime.now(dt.timezone.utc)
    ledger = Ledger(campaign.ledger)
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region)
    try:
        due = ledger.due_for_expiry(campaign.id, now)
        for recipient in due:
            unpublish(store, recipient.token)
            ledger.mark_expired(campaign.id, [recipient.customer_id])
    finally:
        ledger.close()
    return len(due)
