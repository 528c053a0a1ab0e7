"""Installment plans: the schedule made when the first installment is paid, and each later charge's way.

An installment goes ``scheduled`` → ``charging`` (claimed by one collector with a
conditional update, before the provider is called) → ``submitted`` (the provider
has the charge) → ``paid`` or ``failed`` (the provider's webhook says which). A
failure puts the plan in ``needs_card``; a card saved afterwards makes the failed
installment ``scheduled`` again with its next attempt (and so a new idempotency
key); after ``max_failures`` failures the plan is ``broken`` and its open balance
is paid in full again. When every installment is paid the plan is ``completed``.
News may arrive twice or out of order: a paid installment stays paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from . import checks
from .base import LedgerBase, insert_into, missing_campaign, now
from .model import PROVIDERS, LedgerError
from .schema import installment_table, payment_table, plan_table

PLAN_STATUSES = ("active", "needs_card", "broken", "completed")
INSTALLMENT_STATUSES = ("scheduled", "charging", "submitted", "paid", "failed")
STALE_CLAIM = timedelta(minutes=15)  # a claim older than this was left by a collector that died: taken again


@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    amount: int  # minor units
    status: str
    attempt: int
    payment_intent: str | None
    paid_at: datetime | None
    error_code: str | None


@dataclass(frozen=True)
class Plan:
    """A plan with its installments, in order."""

    id: int
    campaign_id: str
    token: str
    provider: str
    provider_customer: str | None
    payment_method: str | None
    currency: str
    total: int  # minor units
    count: int
    status: str
    failures: int
    created_at: datetime
    installments: tuple[Installment, ...]

    @property
    def paid(self) -> tuple[Installment, ...]:
        return tuple(i for i in self.installments if i.status == "paid")

    @property
    def paid_amount(self) -> int:
        return sum(i.amount for i in self.paid)

    @property
    def open_balance(self) -> int:
        return self.total - self.paid_amount

    @property
    def next(self) -> Installment | None:
        """The first installment not paid yet."""
        return next((i for i in self.installments if i.status != "paid"), None)


@dataclass(frozen=True)
class Claim:
    """One installment a collector holds the right to charge, with what the charge needs."""

    plan: Plan
    installment: Installment


def _installment(row: Any) -> Installment:
    return Installment(row.number, row.due_date, row.amount, row.status, row.attempt, row.payment_intent,
                       row.paid_at, row.error_code)


def _plan(conn: Connection, row: Any) -> Plan:
    rows = conn.execute(select(installment_table).where(installment_table.c.plan_id == row.id)
                        .order_by(installment_table.c.number)).all()
    return Plan(row.id, row.campaign_id, row.token, row.provider, row.provider_customer, row.payment_method,
                row.currency, row.total, row.installment_count, row.status, row.failures, row.created_at,
                tuple(_installment(r) for r in rows))


def _plan_by(conn: Connection, *where: Any, lock: bool = False) -> Plan | None:
    query = select(plan_table).where(*where)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _plan(conn, row)


class Plans(LedgerBase):
    """Plans and their installments."""

    def start_plan(self, *, campaign_id: str, token: str, provider: str, provider_customer: str | None,
                   payment_method: str | None, currency: str, schedule: Sequence[tuple[date, int]],
                   first_payment: str, paid_at: datetime) -> Plan:
        """Make the plan whose first installment the payment ``first_payment`` (its provider_ref) paid.

        ``schedule`` is every installment's (due date, minor units), the first
        included. Made once per token: a second call returns the plan as it is.
        Without a ``payment_method`` the plan starts in ``needs_card``.
        """
        call = "start_plan"
        checks.token(call, token)
        if len(schedule) < 2 or any(amount <= 0 for _, amount in schedule):
            raise LedgerError("a plan has at least two installments of more than nothing", where=call,
                              field="schedule")
        stamp = now()
        values = {"campaign_id": checks.text(call, "campaign_id", campaign_id), "token": token,
                  "provider": checks.one_of(call, "provider", provider, PROVIDERS),
                  "provider_customer": checks.optional_text(call, "provider_customer", provider_customer, limit=255),
                  "payment_method": checks.optional_text(call, "payment_method", payment_method, limit=255),
                  "currency": checks.currency(call, currency), "total": sum(amount for _, amount in schedule),
                  "installment_count": len(schedule), "status": "active" if payment_method else "needs_card",
                  "failures": 0,
                  "created_at": stamp, "updated_at": stamp}
        paid_at = checks.aware(call, "paid_at", paid_at)

        def work(conn: Connection) -> Plan:
            plan_id = conn.execute(insert_into(conn, plan_table).values(**values)
                                   .on_conflict_do_nothing(index_elements=["token"]).returning(plan_table.c.id)).scalar()
            if plan_id is not None:
                intent = conn.execute(select(payment_table.c.payment_intent)
                                      .where(payment_table.c.provider_ref == first_payment)).scalar_one_or_none()
                conn.execute(insert(installment_table), [
                    {"plan_id": plan_id, "number": n, "due_date": due, "amount": amount, "attempt": 1,
                     "status": "paid" if n == 1 else "scheduled", "payment_intent": intent if n == 1 else None,
                     "paid_at": paid_at if n == 1 else None, "updated_at": stamp}
                    for n, (due, amount) in enumerate(schedule, start=1)])
                conn.execute(update(payment_table).where(payment_table.c.provider_ref == first_payment)
                             .values(installment=1))
            plan = _plan_by(conn, plan_table.c.token == token)
            assert plan is not None
            return plan

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, values["campaign_id"]))

    def plan_for_token(self, token: str) -> Plan | None:
        if not checks.is_token(token):
            return None
        with self._tx("plan_for_token") as conn:
            return _plan_by(conn, plan_table.c.token == token)

    def plans(self, campaign_id: str) -> list[Plan]:
        """The campaign's plans, oldest first, each with its installments."""
        with self._tx("plans") as conn:
            rows = conn.execute(select(plan_table).where(plan_table.c.campaign_id == campaign_id)
                                .order_by(plan_table.c.id)).all()
            return [_plan(conn, row) for row in rows]

    def due_installments(self, campaign_id: str, on: date) -> list[tuple[int, int]]:
        """(plan id, installment number) of every installment due by ``on`` that a collector may claim now."""
        i, p = installment_table, plan_table
        stale = now() - STALE_CLAIM
        query = (select(i.c.plan_id, i.c.number).join(p, p.c.id == i.c.plan_id)
                 .where(p.c.campaign_id == campaign_id, p.c.status == "active", i.c.due_date <= on,
                        or_(i.c.status == "scheduled", (i.c.status == "charging") & (i.c.claimed_at < stale)))
                 .order_by(i.c.due_date, i.c.plan_id, i.c.number))
        with self._tx("due_installments") as conn:
            return [(row.plan_id, row.number) for row in conn.execute(query)]

    def claim_installment(self, plan_id: int, number: int) -> Claim | None:
        """Take the right to charge one installment: a conditional update only one caller can win.

        None when another collector holds it (or it was paid, or its plan
        stopped). A claim left ``charging`` for :data:`STALE_CLAIM` by a
        collector that died is taken again, with the same attempt (so the same
        idempotency key: the provider answers with the charge already made).
        """
        i, p = installment_table, plan_table
        stamp = now()

        def work(conn: Connection) -> Claim | None:
            active = conn.execute(select(p.c.status).where(p.c.id == plan_id)).scalar_one_or_none()
            if active != "active":
                return None
            won = conn.execute(update(i).where(
                i.c.plan_id == plan_id, i.c.number == number,
                or_(i.c.status == "scheduled", (i.c.status == "charging") & (i.c.claimed_at < stamp - STALE_CLAIM)))
                .values(status="charging", claimed_at=stamp, updated_at=stamp)).rowcount
            if not won:
                return None
            plan = _plan_by(conn, p.c.id == plan_id)
            assert plan is not None
            return Claim(plan, next(x for x in plan.installments if x.number == number))

        return self._write("claim_installment", work)

    def installment_submitted(self, plan_id: int, number: int, payment_intent: str) -> None:
        """The provider has the charge: keep its id (unless a webhook already said how it went)."""
        call = "installment_submitted"
        checks.text(call, "payment_intent", payment_intent, limit=255)
        i = installment_table

        def work(conn: Connection) -> None:
            conn.execute(update(i).where(i.c.plan_id == plan_id, i.c.number == number, i.c.status == "charging")
                         .values(status="submitted", payment_intent=payment_intent, updated_at=now()))

        self._write(call, work)

    def release_installment(self, plan_id: int, number: int) -> None:
        """Give a claim back when the provider could not be asked (the next collector tries again, same key)."""
        i = installment_table

        def work(conn: Connection) -> None:
            conn.execute(update(i).where(i.c.plan_id == plan_id, i.c.number == number, i.c.status == "charging")
                         .values(status="scheduled", claimed_at=None, updated_at=now()))

        self._write("release_installment", work)

    def installment_paid(self, token: str, number: int, payment_intent: str, when: datetime) -> Plan | None:
        """Record an installment paid; the plan is completed with its last one. None: no such plan."""
        call = "installment_paid"
        when = checks.aware(call, "when", when)
        i, p = installment_table, plan_table

        def work(conn: Connection) -> Plan | None:
            plan = _plan_by(conn, p.c.token == token, lock=True)
            if plan is None or not any(x.number == number for x in plan.installments):
                return None
            stamp = now()
            conn.execute(update(i).where(i.c.plan_id == plan.id, i.c.number == number, i.c.status != "paid")
                         .values(status="paid", payment_intent=payment_intent, paid_at=when, error_code=None,
                                 updated_at=stamp))
            unpaid = conn.execute(select(i.c.number).where(i.c.plan_id == plan.id, i.c.status != "paid")).first()
            if unpaid is None and plan.status != "completed":
                conn.execute(update(p).where(p.c.id == plan.id).values(status="completed", updated_at=stamp))
            return _plan_by(conn, p.c.id == plan.id)

        return self._write(call, work)

    def installment_failed(self, token: str, number: int, payment_intent: str, error_code: str | None,
                           max_failures: int) -> Plan | None:
        """Record a failed charge: the plan needs a new card, or breaks at ``max_failures`` failures.

        A failure of a charge already recorded (the same payment intent) or of
        an installment already paid changes nothing.
        """
        call = "installment_failed"
        checks.integer(call, "max_failures", max_failures, least=1)
        i, p = installment_table, plan_table

        def work(conn: Connection) -> Plan | None:
            plan = _plan_by(conn, p.c.token == token, lock=True)
            item = None if plan is None else next((x for x in plan.installments if x.number == number), None)
            if plan is None or item is None:
                return None
            if item.status == "paid" or (item.status == "failed" and item.payment_intent == payment_intent):
                return plan
            stamp = now()
            conn.execute(update(i).where(i.c.plan_id == plan.id, i.c.number == number)
                         .values(status="failed", payment_intent=payment_intent, updated_at=stamp,
                                 error_code=(error_code or "failed")[:64]))
            failures = plan.failures + 1
            status = plan.status
            if status in ("active", "needs_card"):
                status = "broken" if failures >= max_failures else "needs_card"
            conn.execute(update(p).where(p.c.id == plan.id).values(failures=failures, status=status,
                                                                   updated_at=stamp))
            return _plan_by(conn, p.c.id == plan.id)

        return self._write(call, work)

    def card_saved(self, token: str, payment_method: str, provider_customer: str | None) -> Plan | None:
        """A new card for the plan: its failed installments are scheduled again, each with a new attempt."""
        call = "card_saved"
        checks.text(call, "payment_method", payment_method, limit=255)
        checks.optional_text(call, "provider_customer", provider_customer, limit=255)
        i, p = installment_table, plan_table

        def work(conn: Connection) -> Plan | None:
            plan = _plan_by(conn, p.c.token == token, lock=True)
            if plan is None or plan.status not in ("active", "needs_card"):
                return plan
            stamp = now()
            changes: dict[str, Any] = {"payment_method": payment_method, "status": "active", "updated_at": stamp}
            if provider_customer:
                changes["provider_customer"] = provider_customer
            conn.execute(update(p).where(p.c.id == plan.id).values(**changes))
            conn.execute(update(i).where(i.c.plan_id == plan.id, i.c.status == "failed")
                         .values(status="scheduled", attempt=i.c.attempt + 1, claimed_at=None, updated_at=stamp))
            return _plan_by(conn, p.c.id == plan.id)

        return self._write(call, work)
