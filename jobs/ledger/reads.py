"""Reading the ledger back: recipients, payments and events for runs, reports and reconciliation.

Lookups by a token or a session id that cannot be one answer "none" rather
than raise: they come straight from requests. Whole-campaign lists are read a
page at a time, each page in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from . import checks
from .base import LedgerBase
from .migrate import read_state
from .model import RECIPIENT_STATUSES, Recipient, to_recipient
from .schema import event_table, payment_table, recipient_table

_PAGE = 1000       # rows per query when streaming


def _as_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class Reads(LedgerBase):
    """Every query of the ledger."""

    def recipient(self, campaign_id: str, customer_id: str) -> Recipient | None:
        with self._tx("recipient") as conn:
            row = conn.execute(select(recipient_table).where(recipient_table.c.campaign_id == campaign_id,
                                                             recipient_table.c.customer_id == customer_id)).first()
        return None if row is None else to_recipient(row)

    def recipient_by_token(self, token: str) -> Recipient | None:
        if not checks.is_token(token):
            return None
        with self._tx("recipient_by_token") as conn:
            row = conn.execute(select(recipient_table).where(recipient_table.c.token == token)).first()
        return None if row is None else to_recipient(row)

    def recipients(self, campaign_id: str, *, status: str | None = None) -> Iterator[Recipient]:
        """The campaign's recipients by customer_id, read a page at a time (no transaction held open)."""
        if status is not None:
            checks.one_of("recipients", "status", status, RECIPIENT_STATUSES)
        query = select(recipient_table).where(recipient_table.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(recipient_table.c.status == status)
        return self._pages("recipients", query, recipient_table.c.customer_id, to_recipient)

    def due_for_expiry(self, campaign_id: str, now: datetime) -> list[Recipient]:
        """Published recipients whose link has expired by ``now``."""
        now = checks.aware("due_for_expiry", "now", now)
        query = select(recipient_table).where(
            recipient_table.c.campaign_id == campaign_id, recipient_table.c.status == "published",
            recipient_table.c.expires_at <= now).order_by(recipient_table.c.customer_id)
        with self._tx("due_for_expiry") as conn:
            return [to_recipient(row) for row in conn.execute(query)]

    def counts(self, campaign_id: str) -> dict[str, int]:
        """status -> number of recipients, every status present (0 when none)."""
        query = (select(recipient_table.c.status, func.count()).where(recipient_table.c.campaign_id == campaign_id)
                 .group_by(recipient_table.c.status))
        result = dict.fromkeys(RECIPIENT_STATUSES, 0)
        with self._tx("counts") as conn:
            result.update({status: count for status, count in conn.execute(query)})
        return result

    def payment(self, provider_ref: str) -> dict[str, Any] | None:
        """The payment recorded under this provider reference (the checkout session id), or None."""
        if not isinstance(provider_ref, str) or not provider_ref or len(provider_ref) > 255:
            return None
        with self._tx("payment") as conn:
            row = conn.execute(select(payment_table).where(payment_table.c.provider_ref == provider_ref)).first()
        return None if row is None else _as_dict(row)

    def payments_for_token(self, token: str) -> list[dict[str, Any]]:
        """The recipient's payments, oldest first (a recipient has a handful at most)."""
        if not checks.is_token(token):
            return []
        with self._tx("payments_for_token") as conn:
            rows = conn.execute(select(payment_table).where(payment_table.c.token == token)
                                .order_by(payment_table.c.id)).all()
        return [_as_dict(row) for row in rows]

    def payments(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        """The campaign's payments in the order they were first recorded, one dict per row."""
        query = select(payment_table).where(payment_table.c.campaign_id == campaign_id)
        return self._pages("payments", query, payment_table.c.id, _as_dict)

    def events(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        """The campaign's events in the order they were recorded, one dict per row."""
        query = select(event_table).where(event_table.c.campaign_id == campaign_id)
        return self._pages("events", query, event_table.c.id, _as_dict)

    def schema_revision(self) -> str | None:
        """The database's schema revision (after opening it, which creates or upgrades it when it may)."""
        with self._tx("schema_revision") as conn:
            return read_state(conn).revision

    def _pages(self, call: str, query: Any, key: Any, convert: Callable[[Any], Any]) -> Iterator[Any]:
        after = None
        while True:
            page = query.order_by(key).limit(_PAGE)
            if after is not None:
                page = page.where(key > after)
            with self._tx(call) as conn:
                rows = conn.execute(page).all()
            yield from (convert(row) for row in rows)
            if len(rows) < _PAGE:
                return
            after = getattr(rows[-1], key.name)
