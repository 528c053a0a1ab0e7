"""What every request shares, kept in ``app.extensions["billcast"]``: the campaigns, and one
ledger and one store per campaign, opened once. Blueprints reach it through :func:`service`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from billcast.jobs.campaign import Campaign
from billcast.jobs.ledger import Ledger, Recipient
from billcast.jobs.store import ObjectStore, open_store

from .settings import ServiceSettings


@dataclass(frozen=True)
class Found:
    """A recipient found by token, with its campaign and that campaign's ledger and store."""

    campaign: Campaign
    ledger: Ledger
    store: ObjectStore
    recipient: Recipient


@dataclass
class Service:
    """What the app's requests share: campaigns by id, and one ledger and one store per campaign."""

    settings: ServiceSettings
    _ledgers: dict[str, Ledger] = field(default_factory=dict)
    _stores: dict[str, ObjectStore] = field(default_factory=dict)

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        return self.settings.campaigns

    def campaign(self, campaign_id: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    def ledger(self, campaign: Campaign) -> Ledger:
        return self._ledger_at(campaign.ledger)

    def _ledger_at(self, url: str) -> Ledger:
        """One ledger per database, whatever asks for it."""
        if url not in self._ledgers:
            self._ledgers[url] = Ledger(url)
        return self._ledgers[url]

    def open_ledgers(self) -> None:
        """Open every campaign's ledger now, so that one the service cannot use (a PostgreSQL ledger behind
        this code's schema, a database out of reach) stops it at start, not at a debtor's request."""
        for campaign in self.campaigns:
            self.ledger(campaign).open()

    def admin_ledger(self) -> Ledger | None:
        """Where sign-in attempts and admin sessions are kept: ``settings.admin_ledger``, else the first
        campaign's ledger (the same on every worker and host that serves the same campaigns); None without."""
        if self.settings.admin_ledger is not None:
            return self._ledger_at(self.settings.admin_ledger)
        return self.ledger(self.campaigns[0]) if self.campaigns else None

    def store(self, campaign: Campaign) -> ObjectStore:
        if campaign.store not in self._stores:
            self._stores[campaign.store] = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url,
                                                      region=campaign.store_region)
        return self._stores[campaign.store]

    def ledgers(self) -> list[tuple[Ledger, tuple[str, ...]]]:
        """Each ledger once, with the ids of the campaigns served from it."""
        first: dict[str, Campaign] = {}
        ids: dict[str, list[str]] = {}
        for campaign in self.campaigns:
            first.setdefault(campaign.ledger, campaign)
            ids.setdefault(campaign.ledger, []).append(campaign.id)
        return [(self.ledger(campaign), tuple(ids[url])) for url, campaign in first.items()]

    def find(self, token: str) -> Found | None:
        """The recipient behind a token, in whichever campaign's ledger has it; None for an unknown token."""
        for campaign in self.campaigns:
            recipient = self.ledger(campaign).recipient_by_token(token)
            if recipient is not None and recipient.campaign_id == campaign.id:
                return Found(campaign, self.ledger(campaign), self.store(campaign), recipient)
        return None

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.close()


def service() -> Service:
    """The :class:`Service` of the app handling the current request."""
    return current_app.extensions["billcast"]
