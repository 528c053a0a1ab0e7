"""Writing events: what a recipient did on their page or video (views, plays, progress, clicks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from . import checks
from .base import LedgerBase
from .model import EVENT_KINDS
from .schema import event_table


class Events(LedgerBase):
    """The beacon's one write."""

    def add_event(self, *, campaign_id: str, token: str, kind: str, value: int | None, at: datetime) -> None:
        """Record one thing a recipient did on their page or video."""
        call = "add_event"
        stmt = insert(event_table).values(
            campaign_id=checks.text(call, "campaign_id", campaign_id), token=checks.token(call, token),
            kind=checks.one_of(call, "kind", kind, EVENT_KINDS),
            value=None if value is None else checks.integer(call, "value", value),
            at=checks.aware(call, "at", at))
        self._write(call, lambda conn: conn.execute(stmt))
