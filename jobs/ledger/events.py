"""Writing events: what a recipient did on their page or video (views, plays, progress, clicks).

A view, a play and each progress mark count once per page link and visitor,
and once per page link and session: the ``events`` table's unique indexes on
(token, once, visitor) and (token, once, session) refuse the second, and the
beacon's ``INSERT ... ON CONFLICT DO NOTHING`` drops it without a word. Clicks
have no ``once`` (NULL, never equal to another) and count every time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from . import checks
from .base import LedgerBase, insert_into
from .model import EVENT_KINDS, LedgerError
from .schema import UTCDateTime, event_table, recipient_table

ONCE_KINDS = ("view", "play", "progress")  # counted once per page link and visitor, and per session
VISITOR_CHARS = 16  # hex digits of the service's keyed hash of a visitor
_VISITOR = re.compile(rf"[0-9a-f]{{{VISITOR_CHARS}}}")
_SESSION = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class BeaconResult:
    """What became of a beacon: recorded; a repeat of one already counted (``repeat``); refused by the rate
    limit (``retry_after`` seconds); or none of these (not a published recipient's token)."""

    recorded: bool
    retry_after: float | None = None
    repeat: bool = False


def once_key(kind: str, value: int | None) -> str | None:
    """What an event counts once by: ``view``, ``play``, ``progress:50``; None for a click (counted every time)."""
    if kind == "progress":
        return f"progress:{value}"
    return kind if kind in ONCE_KINDS else None


class Events(LedgerBase):
    """The beacon's one write, its dedupe and the rate limit it is held to."""

    def add_event(self, *, campaign_id: str, token: str, kind: str, value: int | None, at: datetime) -> None:
        """Record one thing a recipient did on their page or video, with no visitor or session (never deduped)."""
        call = "add_event"
        stmt = insert(event_table).values(
            campaign_id=checks.text(call, "campaign_id", campaign_id), token=checks.token(call, token),
            kind=checks.one_of(call, "kind", kind, EVENT_KINDS),
            value=None if value is None else checks.integer(call, "value", value),
            at=checks.aware(call, "at", at))
        self._write(call, lambda conn: conn.execute(stmt))

    def add_beacon_event(self, *, campaign_ids: Sequence[str], token: str, kind: str, value: int | None,
                         at: datetime, limit: int, window: timedelta, visitor: str,
                         session: str | None = None) -> BeaconResult:
        """Record an event of a published recipient of one of ``campaign_ids``, once, within the page's rate limit.

        Not recorded when the token is no such recipient's; refused (``retry_after``)
        when the token already has ``limit`` events in the ``window`` before ``at``;
        a ``repeat`` when the page link already has this view, play or progress mark
        from this ``visitor`` (the service's keyed hash, :data:`VISITOR_CHARS` hex
        digits) or this ``session`` (the page's id, 22 URL-safe characters). The
        published check, the count and the insert are one ``INSERT ... SELECT`` (on
        PostgreSQL in one transaction after locking the recipient's row; SQLite runs a
        statement under its one write lock), so every process and host on this ledger
        keeps the one limit and the one count; when nothing was inserted, a second look
        says why. The count asks only for the time of the token's ``limit``-th newest
        event, through the token's index (ids grow with time), so its cost does not grow
        with the events a page has had; repeats are not events, so they are not counted.
        """
        call = "add_beacon_event"
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise LedgerError(f"must be a positive integer; got {limit!r}", where=call, field="limit")
        if not isinstance(visitor, str) or not _VISITOR.fullmatch(visitor):
            raise LedgerError(f"must be {VISITOR_CHARS} lowercase hex digits", where=call, field="visitor")
        if session is not None and (not isinstance(session, str) or not _SESSION.fullmatch(session)):
            raise LedgerError("must be 22 URL-safe characters or None", where=call, field="session")
        if not checks.is_token(token) or not campaign_ids:
            return BeaconResult(recorded=False)
        at = checks.aware(call, "at", at)
        ids = {f"campaign_{i}": campaign_id for i, campaign_id in enumerate(campaign_ids)}
        row = {"token": token, "kind": checks.one_of(call, "kind", kind, EVENT_KINDS),
               "value": None if value is None else checks.integer(call, "value", value), "at": at,
               "once": once_key(kind, value), "visitor": visitor, "session": session}

        def work(conn: Connection) -> BeaconResult:
            if conn.dialect.name == "postgresql":  # SQLite runs the INSERT under its one write lock
                conn.execute(_LOCK, {"token": token})
            insert_once, why_not = _statements(conn, len(campaign_ids))
            params = {**row, **ids, "skip": limit - 1, "since": at - window}
            if conn.execute(insert_once, params).rowcount == 1:
                return BeaconResult(recorded=True)
            found = conn.execute(why_not, params).first()  # not published here, over the limit, or a repeat
            if found is None:
                return BeaconResult(recorded=False)
            if found.oldest is not None and found.oldest > at - window:
                return BeaconResult(recorded=False, retry_after=max((found.oldest + window - at).total_seconds(), 0.0))
            return BeaconResult(recorded=False, repeat=True)

        # On SQLite the write is the one INSERT, its own transaction: the write lock is held only while it runs.
        return self._write(call, work, statements=True)


# The recipient's row, locked until the transaction ends: concurrent beacons of one page link are counted in turn.
_LOCK = select(recipient_table.c.token).where(recipient_table.c.token == bindparam("token")).with_for_update()
# The time of a token's n-th newest event (n = skip + 1): the subquery walks the token's index only.
_NTH_ID = (select(event_table.c.id).where(event_table.c.token == bindparam("token"))
           .order_by(event_table.c.id.desc()).limit(1).offset(bindparam("skip")).scalar_subquery())
_NTH_NEWEST = select(event_table.c.at).where(event_table.c.id == _NTH_ID).scalar_subquery()
_COLUMNS = ("campaign_id", "token", "kind", "value", "at", "once", "visitor", "session")
_UNDER_LIMIT = ~select(event_table.c.id).where(event_table.c.id == _NTH_ID,
                                               event_table.c.at > bindparam("since", type_=UTCDateTime)).exists()
_STATEMENTS: dict[tuple[str, int], tuple[Any, Any]] = {}  # built once per dialect and number of campaigns


def _statements(conn: Connection, campaigns: int) -> tuple[Any, Any]:
    """The beacon's one write and the look that says why it wrote nothing, in the dialect of ``conn``, for a
    ledger serving ``campaigns`` campaigns (``campaign_0``, ...: plain parameters, no list expanded per call).

    The write is ``INSERT INTO events ... SELECT ... ON CONFLICT DO NOTHING``: the event of a published
    recipient of those campaigns under the page's rate limit, its row count saying whether it was recorded.
    No RETURNING: on SQLite the statement then ends (and commits) within the one call that runs it;
    ``preserve_rowcount`` keeps PostgreSQL's count. The look gives the recipient's campaign (no row: not a
    published one here) and the time of the token's n-th newest event (over the limit, or else a repeat).
    """
    key = (conn.dialect.name, campaigns)
    if key not in _STATEMENTS:
        published = (recipient_table.c.token == bindparam("token")) & (recipient_table.c.status == "published") & (
            recipient_table.c.campaign_id.in_([bindparam(f"campaign_{i}") for i in range(campaigns)]))
        row = select(recipient_table.c.campaign_id,
                     *(bindparam(name, type_=event_table.c[name].type) for name in _COLUMNS[1:])
                     ).where(published, _UNDER_LIMIT)
        write = (insert_into(conn, event_table).from_select(_COLUMNS, row).on_conflict_do_nothing()
                 .execution_options(preserve_rowcount=True))
        _STATEMENTS[key] = (write, select(recipient_table.c.campaign_id, _NTH_NEWEST.label("oldest")).where(published))
    return _STATEMENTS[key]
