"""What the payment service writes: provider webhooks seen once, payments by session, the time paid.

Provider news may come twice, late or out of order: a paid payment stays paid,
a raised flag stays raised, and the first time a recipient paid is the one kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from . import checks
from .base import LedgerBase, insert_into, missing_campaign, now
from .model import OPTIONS, PAYMENT_STATUSES, PROVIDERS, SOURCES, LedgerError
from .schema import payment_table, recipient_table, webhook_table


class Payments(LedgerBase):
    """Webhooks, payments and the recipient's paid time."""

    def seen_webhook(self, event_id: str, type: str) -> bool:
        """True when this provider event was recorded before; records it otherwise, atomically."""
        checks.text("seen_webhook", "event_id", event_id, limit=255)
        checks.text("seen_webhook", "type", type, limit=100)
        values = {"event_id": event_id, "type": type, "received_at": now()}

        def work(conn: Connection) -> bool:
            stmt = insert_into(conn, webhook_table).values(**values).on_conflict_do_nothing(
                index_elements=[webhook_table.c.event_id]).returning(webhook_table.c.event_id)
            return conn.execute(stmt).first() is None

        return self._write("seen_webhook", work)

    def forget_webhook(self, event_id: str) -> None:
        """Undo :meth:`seen_webhook` for an event whose handling failed, so the provider's retry is handled."""
        checks.text("forget_webhook", "event_id", event_id, limit=255)
        self._write("forget_webhook",
                    lambda conn: conn.execute(delete(webhook_table).where(webhook_table.c.event_id == event_id)))

    def upsert_payment(self, *, campaign_id: str, token: str, provider: str, provider_ref: str, amount: int,
                       currency: str, option: str, source: str, status: str, payment_intent: str | None = None,
                       flag_reason: str | None = None, expires_at: datetime | None = None,
                       idempotency_key: str | None = None, installment: int | None = None) -> int:
        """Insert or update the payment with this ``provider_ref``; returns its id.

        A paid payment stays paid: later news of any other status changes only
        its payment_intent (when it had none) and its flag. A flag, once
        raised, stays raised. ``expires_at`` and ``idempotency_key`` (the
        checkout session's, as created) and ``installment`` (which of a plan's
        installments it pays) are set when given and kept otherwise.
        """
        call = "upsert_payment"
        values = _checked(call, campaign_id=campaign_id, token=token, provider=provider, provider_ref=provider_ref,
                          amount=amount, currency=currency, option=option, source=source, status=status)
        checks.optional_text(call, "payment_intent", payment_intent, limit=255)
        checks.optional_text(call, "flag_reason", flag_reason, limit=500)
        session: dict[str, Any] = {}
        if expires_at is not None:
            session["expires_at"] = checks.aware(call, "expires_at", expires_at)
        if idempotency_key is not None:
            session["idempotency_key"] = checks.text(call, "idempotency_key", idempotency_key, limit=255)
        if installment is not None:
            session["installment"] = checks.integer(call, "installment", installment, least=1)

        def work(conn: Connection) -> int:
            row = _payment_row(conn, provider_ref)
            if row is None:
                stamp = now()
                new_id = conn.execute(insert_into(conn, payment_table).values(
                    **values, **session, payment_intent=payment_intent, flagged=flag_reason is not None,
                    flag_reason=flag_reason, created_at=stamp, updated_at=stamp)
                    .on_conflict_do_nothing(index_elements=[payment_table.c.provider_ref])
                    .returning(payment_table.c.id)).scalar()
                if new_id is not None:
                    return int(new_id)
                row = _payment_row(conn, provider_ref)     # another process inserted it first
            _merge_payment(conn, call, row, values, payment_intent, flag_reason, session)
            return int(row.id)

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, campaign_id))

    def open_checkout(self, *, campaign_id: str, token: str, provider: str, provider_ref: str, amount: int,
                      currency: str, option: str, source: str, expires_at: datetime, idempotency_key: str) -> str:
        """The checkout session made with ``idempotency_key``: ``provider_ref``, recorded now as pending, or
        the one recorded first under that key (simultaneous clicks all get that one).

        An ``INSERT ... ON CONFLICT DO NOTHING`` on the key's unique index, then a read in the same
        transaction: whichever insert commits first wins, the others wait for it and read its row.
        """
        call = "open_checkout"
        key = checks.text(call, "idempotency_key", idempotency_key, limit=255)
        stamp = now()
        values = _checked(call, campaign_id=campaign_id, token=token, provider=provider, provider_ref=provider_ref,
                          amount=amount, currency=currency, option=option, source=source, status="pending")
        values |= {"flagged": False, "expires_at": checks.aware(call, "expires_at", expires_at),
                   "idempotency_key": key, "created_at": stamp, "updated_at": stamp}

        def work(conn: Connection) -> str:
            made = conn.execute(insert_into(conn, payment_table).values(**values)
                                .on_conflict_do_nothing(index_elements=[payment_table.c.idempotency_key])
                                .returning(payment_table.c.provider_ref)).scalar()
            if made is not None:
                return str(made)
            first = conn.execute(select(payment_table.c.provider_ref, payment_table.c.token)
                                 .where(payment_table.c.idempotency_key == key)).one()
            if first.token != token:
                raise LedgerError("is another recipient's", where=call, field="idempotency_key")
            return str(first.provider_ref)

        return self._write(call, work, refused=lambda conn: missing_campaign(conn, call, campaign_id))

    def mark_paid(self, token: str, when: datetime) -> None:
        """Record that the recipient with this token paid; the first time paid is the one kept."""
        call = "mark_paid"
        checks.token(call, token)
        when = checks.aware(call, "when", when)
        paid_at = recipient_table.c.paid_at

        def work(conn: Connection) -> None:
            done = conn.execute(update(recipient_table)
                                .where(recipient_table.c.token == token, or_(paid_at.is_(None), paid_at > when))
                                .values(paid_at=when, updated_at=now())).rowcount
            if not done and conn.execute(select(recipient_table.c.token)
                                         .where(recipient_table.c.token == token)).first() is None:
                raise LedgerError(f"no recipient has the token {checks.hint(token)}", where=call, field="token")

        self._write(call, work)


def _checked(call: str, *, campaign_id: str, token: str, provider: str, provider_ref: str, amount: int,
             currency: str, option: str, source: str, status: str) -> dict[str, Any]:
    """A payment's own columns, each checked (a LedgerError naming ``call`` and the field)."""
    return {
        "campaign_id": checks.text(call, "campaign_id", campaign_id), "token": checks.token(call, token),
        "provider": checks.one_of(call, "provider", provider, PROVIDERS),
        "provider_ref": checks.text(call, "provider_ref", provider_ref, limit=255),
        "amount": checks.integer(call, "amount", amount), "currency": checks.currency(call, currency),
        "option": checks.one_of(call, "option", option, OPTIONS),
        "source": checks.one_of(call, "source", source, SOURCES),
        "status": checks.one_of(call, "status", status, PAYMENT_STATUSES),
    }


def _payment_row(conn: Connection, provider_ref: str) -> Any | None:
    return conn.execute(select(payment_table).where(payment_table.c.provider_ref == provider_ref)
                        .with_for_update()).first()


def _merge_payment(conn: Connection, call: str, row: Any, values: dict[str, Any], payment_intent: str | None,
                   flag_reason: str | None, session: dict[str, Any]) -> None:
    """Apply news about a payment already recorded, by the rules in :meth:`Payments.upsert_payment`."""
    for field in ("campaign_id", "token", "provider"):
        if getattr(row, field) != values[field]:
            raise LedgerError(f"payment {row.id} was recorded with another {field}; a provider_ref names one "
                              "payment of one recipient", where=call, field=field)
    changes: dict[str, Any] = {} if row.status == "paid" and values["status"] != "paid" else dict(values)
    if payment_intent is not None and (row.payment_intent is None or "status" in changes):
        changes["payment_intent"] = payment_intent
    if flag_reason is not None:
        changes |= {"flagged": True, "flag_reason": flag_reason}
    changes |= session
    if changes:
        conn.execute(update(payment_table).where(payment_table.c.id == row.id).values(**changes, updated_at=now()))
