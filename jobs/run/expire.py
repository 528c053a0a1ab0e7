"""``billcast expire``: take down the pages of recipients whose links have outlived the campaign's ``link_days``."""

from __future__ import annotations

import datetime as dt

from ..campaign import Campaign
from ..cdn import purge
from ..ledger import Ledger
from ..publish import unpublish
from ..store import open_store


def expire_campaign(campaign: Campaign, *, now: dt.datetime | None = None) -> int:
    """Take down the pages of recipients past their link lifetime, purge the campaign's CDN (``cdn``) of
    them, and mark them expired; return how many.

    They are marked only once the CDN has accepted the purge: when it fails, the next run takes the
    same recipients down again (idempotent) and purges them then.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    ledger = Ledger(campaign.ledger)
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region)
    try:
        due = ledger.due_for_expiry(campaign.id, now)
        for recipient in due:
            unpublish(store, recipient.token)
        if campaign.cdn is not None:
            purge(campaign.cdn, campaign.public_url, [recipient.token for recipient in due])
        if due:
            ledger.mark_expired(campaign.id, [recipient.customer_id for recipient in due])
    finally:
        ledger.close()
    return len(due)
