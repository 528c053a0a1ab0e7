"""Writing campaigns and recipients: a recipient's link is fixed once and kept, whoever calls and how often."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import Connection, delete, select, update

from . import checks
from .base import LedgerBase, insert_into, missing_campaign, now
from .model import LedgerError, Recipient, to_recipient
from .schema import campaign_table, recipient_table, withheld_table

_IN_CHUNK = 500    # values per IN (...) list
_KEY = (recipient_table.c.campaign_id, recipient_table.c.customer_id)


class Recipients(LedgerBase):
    """Campaigns and the recipients published in them."""

    def ensure_campaign(self, campaign_id: str, *, link_days: int, config_hash: str | None = None) -> None:
        """Insert the campaign, or update its link lifetime and config hash."""
        call = "ensure_campaign"
        checks.text(call, "campaign_id", campaign_id)
        checks.integer(call, "link_days", link_days, least=1)
        checks.optional_text(call, "config_hash", config_hash, limit=128)
        stamp = now()
        values = {"link_days": link_days, "config_hash": config_hash, "updated_at": stamp}

        def work(conn: Connection) -> None:
            conn.execute(insert_into(conn, campaign_table).values(id=campaign_id, created_at=stamp, **values)
                         .on_conflict_do_update(index_elements=[campaign_table.c.id], set_=values))

        self._write(call, work)

    def reserve(self, *, campaign_id: str, customer_id: str, token: str, storyboard: str, variant: str,
                amount_due: Decimal, currency: str) -> Recipient:
        """The recipient's row, inserting a pending one with ``token`` when there is none yet.

        Fixes a recipient's link before rendering: processes that reserve the
        same recipient at once all get the row that won, and so one token.
        """
        call = "reserve"
        values = _recipient_values(call, campaign_id=campaign_id, customer_id=customer_id, token=token,
                                   storyboard=storyboard, variant=variant, amount_due=amount_due, currency=currency)
        refused = _refusal(call, campaign_id, customer_id, token)

        def work(conn: Connection) -> Any:
            conn.execute(insert_into(conn, recipient_table).values(**values, status="pending")
                         .on_conflict_do_nothing(index_elements=_KEY))
            row = conn.execute(select(recipient_table).where(_KEY[0] == campaign_id, _KEY[1] == customer_id)).first()
            if row is None:
                refused(conn)
            return row

        return to_recipient(self._write(call, work, refused=refused))

    def record_published(self, *, campaign_id: str, customer_id: str, token: str, storyboard: str, variant: str,
                         amount_due: Decimal, currency: str, content_hash: str | None, published_at: datetime,
                         expires_at: datetime, plan_installments: int | None = None,
                         days_past_due: int | None = None, plan_first_due: date | None = None,
                         locale: str | None = None) -> bool:
        """Record a recipient as published (one row per campaign and customer, whoever calls it and how often);
        whether the ledger has their payment.

        ``plan_installments`` is the record's ``debt.plan_offer.installments``
        (None: no plan on offer), ``plan_first_due`` its ``first_due_date``,
        ``days_past_due`` its ``debt.days_past_due`` (None: no arrears) and
        ``locale`` the page's; all are replaced by each call, as the record says.
        A row of an earlier run that held the recipient back (``withheld``) goes.
        """
        call = "record_published"
        values = _recipient_values(call, campaign_id=campaign_id, customer_id=customer_id, token=token,
                                   storyboard=storyboard, variant=variant, amount_due=amount_due, currency=currency)
        values |= {"status": "published",
                   "content_hash": checks.optional_text(call, "content_hash", content_hash, limit=128),
                   "published_at": checks.aware(call, "published_at", published_at),
                   "expires_at": checks.aware(call, "expires_at", expires_at),
                   "plan_installments": checks.optional_integer(call, "plan_installments", plan_installments,
                                                                least=1),
                   "days_past_due": checks.optional_integer(call, "days_past_due", days_past_due, least=0),
                   "plan_first_due": checks.optional_date(call, "plan_first_due", plan_first_due),
                   "locale": checks.optional_text(call, "locale", locale, limit=35)}
        changes = {k: v for k, v in values.items() if k not in ("campaign_id", "customer_id")}

        def work(conn: Connection) -> bool:
            conn.execute(delete(withheld_table).where(withheld_table.c.campaign_id == campaign_id,
                                                      withheld_table.c.customer_id == customer_id))
            return conn.execute(insert_into(conn, recipient_table).values(**values)
                                .on_conflict_do_update(index_elements=_KEY, set_=changes)
                                .returning(recipient_table.c.paid_at)).scalar() is not None

        return self._write(call, work, refused=_refusal(call, campaign_id, customer_id, token))

    def mark_expired(self, campaign_id: str, customer_ids: Iterable[str]) -> int:
        """Mark published recipients expired; returns how many changed (others are left alone)."""
        ids = list(dict.fromkeys(customer_ids))
        stamp = now()

        def work(conn: Connection) -> int:
            changed = 0
            for start in range(0, len(ids), _IN_CHUNK):
                changed += conn.execute(
                    update(recipient_table).where(recipient_table.c.campaign_id == campaign_id,
                                                  recipient_table.c.customer_id.in_(ids[start:start + _IN_CHUNK]),
                                                  recipient_table.c.status == "published")
                    .values(status="expired", updated_at=stamp)).rowcount
            return changed

        return self._write("mark_expired", work)


def _recipient_values(call: str, *, campaign_id: str, customer_id: str, token: str, storyboard: str,
                      variant: str, amount_due: Decimal, currency: str) -> dict[str, Any]:
    """The checked columns ``reserve`` and ``record_published`` share."""
    return {
        "campaign_id": checks.text(call, "campaign_id", campaign_id),
        "customer_id": checks.text(call, "customer_id", customer_id, limit=64),
        "token": checks.token(call, token),
        "storyboard": checks.text(call, "storyboard", storyboard),
        "variant": checks.text(call, "variant", variant, empty_ok=True),
        "amount_due": checks.amount(call, amount_due),
        "currency": checks.currency(call, currency),
        "updated_at": now(),
    }


def _refusal(call: str, campaign_id: str, customer_id: str, token: str) -> Callable[[Connection], NoReturn]:
    """What says why a recipient's row could be neither inserted nor updated."""
    return lambda conn: _explain_refusal(conn, call, campaign_id, customer_id, token)


def _explain_refusal(conn: Connection, call: str, campaign_id: str, customer_id: str, token: str) -> NoReturn:
    """Raise the reason a recipient's row could be neither inserted nor updated."""
    missing_campaign(conn, call, campaign_id)
    owner = conn.execute(select(recipient_table.c.campaign_id, recipient_table.c.customer_id)
                         .where(recipient_table.c.token == token)).first()
    if owner is not None and (owner.campaign_id, owner.customer_id) != (campaign_id, customer_id):
        raise LedgerError(f"{checks.hint(token)} already belongs to another recipient; draw a new token",
                          where=f"{call}: customer {customer_id}", field="token")
    raise LedgerError("the database refused the row", where=f"{call}: customer {customer_id}")
