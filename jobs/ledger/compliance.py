"""Who may be contacted: opt-outs (the suppression list), disputes, and what a run held back and why.

An opt-out is kept per customer and channel, once: the same opt-out posted again
changes nothing. A dispute is open until it is resolved; while one is open, the
customer gets no collection message. Nothing here holds personal data beyond the
customer_id, except a dispute's ``details``: the debtor's own words, stored for
the team that resolves it and never logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, tuple_, update

from ..contact import DISPUTE_DETAILS_MAX, DISPUTE_OUTCOMES, DISPUTE_REASONS, SUPPRESSION_CHANNELS
from . import checks
from .base import LedgerBase, insert_into, missing_campaign, now, serialize_on
from .model import LedgerError
from .schema import dispute_table, recipient_table, suppression_table, withheld_table

WITHHELD_STATUSES = ("suppressed", "deferred")
_PAGE = 1000


@dataclass(frozen=True)
class Suppression:
    customer_id: str
    channel: str
    reason: str
    source: str
    campaign_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Dispute:
    id: int
    campaign_id: str
    customer_id: str
    token: str
    reason: str
    details: str | None
    status: str  # open | resolved
    outcome: str | None
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class ContactState:
    """What the ledger says about contacting one customer now: why not (if anything), and their recent messages."""

    suppression: Suppression | None
    dispute: Dispute | None  # an open one
    recent: tuple[datetime, ...]  # publication times in other campaigns since the time asked about, oldest first


def _suppression(row: Any) -> Suppression:
    return Suppression(row.customer_id, row.channel, row.reason, row.source, row.campaign_id, row.created_at)


def _dispute(row: Any) -> Dispute:
    return Dispute(row.id, row.campaign_id, row.customer_id, row.token, row.reason, row.details, row.status,
                   row.outcome, row.opened_at, row.resolved_at)


def _label(call: str, field: str, value: object, limit: int) -> str:
    """A short code (reason, source): letters, digits, ``_``, ``-``, ``.``; what lands in reports and CSVs."""
    text = checks.text(call, field, value, limit=limit)
    if not all(ch.isalnum() or ch in "_-." for ch in text) or not text.isascii():
        raise LedgerError("must be letters, digits, '_', '-' or '.'", where=call, field=field)
    return text


class Compliance(LedgerBase):
    """The suppression list, disputes and held-back recipients."""

    def suppress(self, *, customer_id: str, channel: str, reason: str, source: str,
                 campaign_id: str | None = None, at: datetime | None = None) -> bool:
        """Put a customer on the suppression list for a channel; False when they were on it already (kept as is)."""
        call = "suppress"
        row = {"customer_id": checks.text(call, "customer_id", customer_id, limit=64),
               "channel": checks.one_of(call, "channel", channel, SUPPRESSION_CHANNELS),
               "reason": _label(call, "reason", reason, 64), "source": _label(call, "source", source, 32),
               "campaign_id": checks.optional_text(call, "campaign_id", campaign_id, limit=200),
               "created_at": checks.aware(call, "at", at) if at is not None else now()}
        return self._write(call, lambda conn: conn.execute(
            insert_into(conn, suppression_table).values(**row).on_conflict_do_nothing()
            .returning(suppression_table.c.customer_id)).first() is not None)

    def unsuppress(self, customer_id: str, channel: str | None = None) -> int:
        """Take a customer off the suppression list (one channel's entry, or all of theirs): they asked to hear
        from us again. Returns how many entries went; an open dispute still holds collection messages back."""
        call = "unsuppress"
        t = suppression_table
        where = [t.c.customer_id == checks.text(call, "customer_id", customer_id, limit=64)]
        if channel is not None:
            where.append(t.c.channel == checks.one_of(call, "channel", channel, SUPPRESSION_CHANNELS))
        return self._write(call, lambda conn: conn.execute(delete(t).where(*where)).rowcount)

    def suppression(self, customer_id: str, channel: str) -> Suppression | None:
        """The entry that keeps this customer from a channel's messages (its own, else "all"), or None."""
        with self._tx("suppression") as conn:
            return _suppressed(conn, customer_id, channel)

    def suppressions(self, *, channel: str | None = None) -> Iterator[Suppression]:
        """The whole list by customer and channel, a page at a time."""
        table = suppression_table
        after: tuple[str, str] | None = None
        while True:
            query = select(table).order_by(table.c.customer_id, table.c.channel).limit(_PAGE)
            if channel is not None:
                query = query.where(table.c.channel == channel)
            if after is not None:
                query = query.where(tuple_(table.c.customer_id, table.c.channel) > tuple_(*after))
            with self._tx("suppressions") as conn:
                rows = conn.execute(query).all()
            yield from (_suppression(row) for row in rows)
            if len(rows) < _PAGE:
                return
            after = (rows[-1].customer_id, rows[-1].channel)

    def open_dispute(self, *, campaign_id: str, customer_id: str, token: str, reason: str,
                     details: str | None, at: datetime | None = None) -> tuple[Dispute, bool]:
        """The customer's open dispute and whether this call opened it (one is open at a time: a second is kept out)."""
        call = "open_dispute"
        values = {"campaign_id": checks.text(call, "campaign_id", campaign_id),
                  "customer_id": checks.text(call, "customer_id", customer_id, limit=64),
                  "token": checks.token(call, token),
                  "reason": checks.one_of(call, "reason", reason, DISPUTE_REASONS),
                  "details": checks.optional_text(call, "details", details, limit=DISPUTE_DETAILS_MAX),
                  "status": "open", "opened_at": checks.aware(call, "at", at) if at is not None else now()}

        def work(conn: Connection) -> tuple[Dispute, bool]:
            serialize_on(conn, "dispute " + values["customer_id"])  # two at once: the second finds the first
            existing = _open_dispute(conn, values["customer_id"])
            if existing is not None:
                return existing, False
            conn.execute(insert(dispute_table).values(**values))
            made = _open_dispute(conn, values["customer_id"])
            assert made is not None
            return made, True

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, values["campaign_id"]))

    def resolve_disputes(self, customer_id: str, outcome: str, at: datetime | None = None) -> int:
        """Close the customer's open disputes with ``outcome``; returns how many were open."""
        call = "resolve_disputes"
        checks.one_of(call, "outcome", outcome, DISPUTE_OUTCOMES)
        stamp = checks.aware(call, "at", at) if at is not None else now()
        stmt = (update(dispute_table).where(dispute_table.c.customer_id == customer_id, dispute_table.c.status == "open")
                .values(status="resolved", outcome=outcome, resolved_at=stamp))
        return self._write(call, lambda conn: conn.execute(stmt).rowcount)

    def disputes(self, *, campaign_id: str | None = None, status: str | None = "open") -> list[Dispute]:
        """Disputes, oldest first: open ones by default, of one campaign or all."""
        query = select(dispute_table).order_by(dispute_table.c.opened_at, dispute_table.c.id)
        if campaign_id is not None:
            query = query.where(dispute_table.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(dispute_table.c.status == checks.one_of("disputes", "status", status,
                                                                         ("open", "resolved")))
        with self._tx("disputes") as conn:
            return [_dispute(row) for row in conn.execute(query)]

    def contact_state(self, customer_id: str, channel: str, *, campaign_id: str,
                      since: datetime | None = None) -> ContactState:
        """Opt-out, open dispute and (with ``since``) publications in other campaigns, in one read."""
        with self._tx("contact_state") as conn:
            suppression = _suppressed(conn, customer_id, channel)
            dispute = _open_dispute(conn, customer_id)
            recent: tuple[datetime, ...] = ()
            if since is not None:
                r = recipient_table
                recent = tuple(conn.execute(
                    select(r.c.published_at).where(r.c.customer_id == customer_id, r.c.campaign_id != campaign_id,
                                                   r.c.published_at >= checks.aware("contact_state", "since", since))
                    .order_by(r.c.published_at)).scalars())
        return ContactState(suppression, dispute, recent)

    def record_withheld(self, *, campaign_id: str, customer_id: str, storyboard: str, variant: str, status: str,
                        reason: str, send_after: datetime | None = None) -> None:
        """Record that a run held a recipient back (replacing what an earlier run recorded for them)."""
        call = "record_withheld"
        values = {"storyboard": checks.text(call, "storyboard", storyboard, empty_ok=True),
                  "variant": checks.text(call, "variant", variant, empty_ok=True),
                  "status": checks.one_of(call, "status", status, WITHHELD_STATUSES),
                  "reason": _label(call, "reason", reason, 64),
                  "send_after": checks.aware(call, "send_after", send_after) if send_after else None, "at": now()}
        key = {"campaign_id": checks.text(call, "campaign_id", campaign_id),
               "customer_id": checks.text(call, "customer_id", customer_id, limit=64)}
        self._write(call, lambda conn: conn.execute(
            insert_into(conn, withheld_table).values(**key, **values)
            .on_conflict_do_update(index_elements=list(key), set_=values)),
            refused=lambda conn: missing_campaign(conn, call, key["campaign_id"]))

    def withheld(self, campaign_id: str) -> Iterable[dict[str, Any]]:
        """What the campaign's runs held back, one dict per customer."""
        query = select(withheld_table).where(withheld_table.c.campaign_id == campaign_id)
        with self._tx("withheld") as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(withheld_table.c.customer_id))]


def _suppressed(conn: Any, customer_id: str, channel: str) -> Suppression | None:
    t = suppression_table
    rows = conn.execute(select(t).where(t.c.customer_id == customer_id, t.c.channel.in_((channel, "all")))
                        .order_by(t.c.created_at)).all()
    return _suppression(rows[0]) if rows else None


def _open_dispute(conn: Any, customer_id: str) -> Dispute | None:
    query = (select(dispute_table).where(dispute_table.c.customer_id == customer_id, dispute_table.c.status == "open")
             .order_by(dispute_table.c.id).limit(1))
    row = conn.execute(query).first()
    return None if row is None else _dispute(row)
