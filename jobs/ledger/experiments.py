"""Experiments in the ledger: each customer's allocation, each wave's shares, and what every group paid.

Allocations and shares are written once (``INSERT ... ON CONFLICT DO NOTHING``, then the row that
won), so two processes running the same wave agree, and a re-run reads back exactly what was decided.
Outcomes are measured the same way for every group: from payments imported from the creditor's books when there are any for the
campaign (the holdout cannot pay through a link it never got), else from the payments taken here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from . import checks
from .base import LedgerBase, insert_into, missing_campaign, now
from .model import LedgerError
from .schema import allocation_table, outcome_table, payment_table, recipient_table, share_table

SEGMENT_MAX = 300
ARM_MAX = 32


@dataclass(frozen=True)
class Allocated:
    """One customer's allocation as recorded."""

    customer_id: str
    wave: int
    segment: str
    arm: str | None  # None: held out
    propensity: float
    allocated_at: datetime


@dataclass(frozen=True)
class Result:
    """An allocation with its outcome within the window: whether the customer paid, and how much."""

    allocation: Allocated
    contacted: bool  # published (an arm) or held out; False for an arm whose page never went out
    paid: bool
    amount: int  # minor units


@dataclass(frozen=True)
class ImportedPayment:
    customer_id: str
    paid_at: datetime
    amount: int
    currency: str
    reference: str


def _allocated(row) -> Allocated:
    return Allocated(row.customer_id, row.wave, row.segment, row.arm, row.propensity, row.allocated_at)


class Experiments(LedgerBase):
    """The experiment's writes and reads."""

    def allocate_once(self, *, campaign_id: str, customer_id: str, wave: int, segment: str, arm: str | None,
                      propensity: float) -> Allocated:
        """Record an allocation unless the customer has one: the first recorded is returned, always."""
        call = "allocate_once"
        if not 0 < propensity <= 1:
            raise LedgerError(f"must be in (0, 1]; got {propensity}", where=call, field="propensity")
        values = {"campaign_id": checks.text(call, "campaign_id", campaign_id),
                  "customer_id": checks.text(call, "customer_id", customer_id, limit=64),
                  "wave": checks.integer(call, "wave", wave, least=1),
                  "segment": checks.text(call, "segment", segment, limit=SEGMENT_MAX),
                  "arm": checks.optional_text(call, "arm", arm, limit=ARM_MAX),
                  "propensity": float(propensity), "allocated_at": now()}
        key = (allocation_table.c.campaign_id == campaign_id, allocation_table.c.customer_id == customer_id)

        def work(conn: Connection) -> Allocated:
            conn.execute(insert_into(conn, allocation_table).values(**values).on_conflict_do_nothing(
                index_elements=[allocation_table.c.campaign_id, allocation_table.c.customer_id]))
            return _allocated(conn.execute(select(allocation_table).where(*key)).one())

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, campaign_id))

    def keep_shares(self, *, campaign_id: str, wave: int, segment: str,
                    shares: Mapping[str, float]) -> dict[str, float]:
        """A wave's shares for a segment: these, unless some were kept before (then those)."""
        call = "keep_shares"
        values = {"campaign_id": checks.text(call, "campaign_id", campaign_id),
                  "wave": checks.integer(call, "wave", wave, least=1),
                  "segment": checks.text(call, "segment", segment, limit=SEGMENT_MAX),
                  "shares": json.dumps(dict(shares), sort_keys=True), "computed_at": now()}

        def work(conn: Connection) -> dict[str, float]:
            conn.execute(insert_into(conn, share_table).values(**values).on_conflict_do_nothing(
                index_elements=[share_table.c.campaign_id, share_table.c.wave, share_table.c.segment]))
            return self._shares(conn, campaign_id, wave, segment)  # type: ignore[return-value]

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, campaign_id))

    def shares(self, campaign_id: str, wave: int, segment: str) -> dict[str, float] | None:
        """The kept shares of a wave and segment, or None when none were kept yet."""
        with self._tx("shares") as conn:
            return self._shares(conn, campaign_id, wave, segment)

    @staticmethod
    def _shares(conn, campaign_id: str, wave: int, segment: str) -> dict[str, float] | None:
        text = conn.execute(select(share_table.c.shares).where(
            share_table.c.campaign_id == campaign_id, share_table.c.wave == wave,
            share_table.c.segment == segment)).scalar_one_or_none()
        return None if text is None else {k: float(v) for k, v in json.loads(text).items()}

    def import_outcomes(self, campaign_id: str, payments: Iterable[ImportedPayment]) -> tuple[int, int]:
        """Payments from the creditor's books: (added, already known by their reference)."""
        call = "import_outcomes"
        rows = [{"campaign_id": campaign_id,
                 "customer_id": checks.text(call, "customer_id", p.customer_id, limit=64),
                 "paid_at": checks.aware(call, "paid_at", p.paid_at),
                 "amount": checks.integer(call, "amount", p.amount, least=0),
                 "currency": checks.currency(call, p.currency),
                 "reference": checks.text(call, "reference", p.reference)} for p in payments]

        def work(conn: Connection) -> int:
            added = 0
            for row in rows:
                added += conn.execute(insert_into(conn, outcome_table).values(**row).on_conflict_do_nothing(
                    index_elements=[outcome_table.c.campaign_id, outcome_table.c.reference])
                    .returning(outcome_table.c.id)).first() is not None
            return added

        added = self._write(call, work, refused=lambda conn: missing_campaign(conn, call, campaign_id))
        return added, len(rows) - added

    def has_imported_outcomes(self, campaign_id: str) -> bool:
        with self._tx("has_imported_outcomes") as conn:
            return bool(conn.execute(select(func.count()).select_from(outcome_table).where(
                outcome_table.c.campaign_id == campaign_id)).scalar_one())

    def allocations(self, campaign_id: str, *, before_wave: int | None = None,
                    segment: str | None = None) -> Iterator[Allocated]:
        """The campaign's allocations by customer id, optionally only earlier waves' or one segment's."""
        query = select(allocation_table).where(allocation_table.c.campaign_id == campaign_id)
        if before_wave is not None:
            query = query.where(allocation_table.c.wave < before_wave)
        if segment is not None:
            query = query.where(allocation_table.c.segment == segment)
        return self._pages("allocations", query, allocation_table.c.customer_id, _allocated)

    def experiment_results(self, campaign_id: str, *, window_days: int, before_wave: int | None = None,
                           segment: str | None = None) -> list[Result]:
        """Each allocation with what the customer paid within ``window_days`` of being published (or of
        their allocation, for the holdout): from imported payments if the campaign has any, else from the
        payments taken here (where the holdout, which got no link, pays nothing)."""
        allocations = list(self.allocations(campaign_id, before_wave=before_wave, segment=segment))
        window = timedelta(days=window_days)
        published = self._published_at(campaign_id)
        paid = (self._imported(campaign_id) if self.has_imported_outcomes(campaign_id)
                else self._taken_here(campaign_id))
        results = []
        for a in allocations:
            start = a.allocated_at if a.arm is None else published.get(a.customer_id)
            amount = 0 if start is None else sum(amount for at, amount in paid.get(a.customer_id, ())
                                                 if start <= at <= start + window)
            results.append(Result(a, contacted=start is not None, paid=amount > 0, amount=amount))
        return results

    def _published_at(self, campaign_id: str) -> dict[str, datetime]:
        query = select(recipient_table.c.customer_id, recipient_table.c.published_at).where(
            recipient_table.c.campaign_id == campaign_id, recipient_table.c.published_at.is_not(None))
        with self._tx("experiment_results") as conn:
            return {row.customer_id: row.published_at for row in conn.execute(query)}

    def _imported(self, campaign_id: str) -> dict[str, list[tuple[datetime, int]]]:
        query = select(outcome_table.c.customer_id, outcome_table.c.paid_at, outcome_table.c.amount).where(
            outcome_table.c.campaign_id == campaign_id)
        found: dict[str, list[tuple[datetime, int]]] = {}
        with self._tx("experiment_results") as conn:
            for row in conn.execute(query):
                found.setdefault(row.customer_id, []).append((row.paid_at, row.amount))
        return found

    def _taken_here(self, campaign_id: str) -> dict[str, list[tuple[datetime, int]]]:
        query = select(recipient_table.c.customer_id, payment_table.c.updated_at, payment_table.c.amount).join(
            payment_table, (payment_table.c.token == recipient_table.c.token)
            & (payment_table.c.campaign_id == recipient_table.c.campaign_id)).where(
            recipient_table.c.campaign_id == campaign_id, payment_table.c.status == "paid",
            payment_table.c.flagged.is_(False))
        found: dict[str, list[tuple[datetime, int]]] = {}
        with self._tx("experiment_results") as conn:
            for row in conn.execute(query):
                found.setdefault(row.customer_id, []).append((row.updated_at, row.amount))
        return found
