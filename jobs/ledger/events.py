"""Writing events: what a recipient did on their page or video (views, plays, progress, clicks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select

from . import checks
from .base import LedgerBase
from .model import EVENT_KINDS, LedgerError
from .schema import event_table, recipient_table


@dataclass(frozen=True)
class BeaconResult:
    """What became of a beacon: recorded, refused by the rate limit (``retry_after`` seconds), or neither
    (not a published recipient's token)."""

    recorded: bool
    retry_after: float | None = None


class Events(LedgerBase):
    """The beacon's one write, and the rate limit it is held to."""

    def add_event(self, *, campaign_id: str, token: str, kind: str, value: int | None, at: datetime) -> None:
        """Record one thing a recipient did on their page or video."""
        call = "add_event"
        stmt = insert(event_table).values(
            campaign_id=checks.text(call, "campaign_id", campaign_id), token=checks.token(call, token),
            kind=checks.one_of(call, "kind", kind, EVENT_KINDS),
            value=None if value is None else checks.integer(call, "value", value),
            at=checks.aware(call, "at", at))
        self._write(call, lambda conn: conn.execute(stmt))

    def add_beacon_event(self, *, campaign_ids: Sequence[str], token: str, kind: str, value: int | None,
                         at: datetime, limit: int, window: timedelta) -> BeaconResult:
        """Record an event of a published recipient of one of ``campaign_ids``, within the page's rate limit.

        Not recorded when the token is no such recipient's; refused (``retry_after``)
        when the token already has ``limit`` events in the ``window`` before ``at``. The
        lookup, the count and the insert share one writing transaction, the recipient's
        row locked (PostgreSQL; SQLite has one writer at a time), so every process and
        host on this ledger keeps the one limit. The count asks only for the time of the
        token's ``limit``-th newest event, through the token's index (ids grow with time),
        so its cost does not grow with the events a page has had.
        """
        call = "add_beacon_event"
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise LedgerError(f"must be a positive integer; got {limit!r}", where=call, field="limit")
        if not checks.is_token(token) or not campaign_ids:
            return BeaconResult(recorded=False)
        row = {"token": token, "kind": checks.one_of(call, "kind", kind, EVENT_KINDS),
               "value": None if value is None else checks.integer(call, "value", value),
               "at": checks.aware(call, "at", at)}

        def work(conn: Connection) -> BeaconResult:
            campaign_id = conn.execute(_PUBLISHED, {"token": token, "ids": list(campaign_ids)}).scalar()
            if campaign_id is None:
                return BeaconResult(recorded=False)
            oldest = conn.execute(_NTH_NEWEST, {"token": token, "skip": limit - 1}).scalar()
            if oldest is not None and oldest > at - window:
                return BeaconResult(recorded=False, retry_after=max((oldest + window - at).total_seconds(), 0.0))
            conn.execute(_INSERT, {**row, "campaign_id": campaign_id})
            return BeaconResult(recorded=True)

        return self._write(call, work)


_PUBLISHED = select(recipient_table.c.campaign_id).where(
    recipient_table.c.token == bindparam("token"), recipient_table.c.status == "published",
    recipient_table.c.campaign_id.in_(bindparam("ids", expanding=True))).with_for_update()
# The time of a token's n-th newest event (n = skip + 1): the subquery walks the token's index only.
_NTH_ID = (select(event_table.c.id).where(event_table.c.token == bindparam("token"))
           .order_by(event_table.c.id.desc()).limit(1).offset(bindparam("skip")).scalar_subquery())
_NTH_NEWEST = select(event_table.c.at).where(event_table.c.id == _NTH_ID)
_INSERT = insert(event_table)
