"""What the ledger speaks in: its vocabularies, its error, and a recipient's row as a value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billcast.microsite import SOURCES as LINK_SOURCES
from billcast.renderer import BillcastError

RECIPIENT_STATUSES = ("pending", "published", "expired")
PAYMENT_STATUSES = ("pending", "paid", "failed", "expired", "saved")  # saved: a card-saving (setup) session done
PROVIDERS = ("stripe", "demo")
OPTIONS = ("full", "plan", "card")  # card: a setup session that saves a new card for a plan
SOURCES = (*LINK_SOURCES, "other", "collect")  # other: a session Billcast did not make; collect: `billcast collect`
EVENT_KINDS = ("view", "play", "progress", "cta_click", "pay_click")


class LedgerError(BillcastError):
    """The ledger cannot be opened or refused a call: names the database or call, and the field."""

    exit_code = 8

    def __init__(self, message: str, *, where: str = "ledger", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.field = field

    def __str__(self) -> str:
        if self.field:
            return f"{self.where}: {self.field}: {self.message}"
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Recipient:
    """One recipient of a campaign as the ledger knows them: a link, never a name."""

    campaign_id: str
    customer_id: str
    token: str
    storyboard: str
    variant: str
    status: str
    amount_due: Decimal
    currency: str
    content_hash: str | None
    published_at: datetime | None
    expires_at: datetime | None
    paid_at: datetime | None
    plan_installments: int | None = None  # the plan on offer (debt.plan_offer.installments); None: no plan
    days_past_due: int | None = None  # debt.days_past_due; None for a customer with no arrears
    plan_first_due: date | None = None  # debt.plan_offer.first_due_date; None: no plan on offer
    locale: str | None = None  # the page's locale; None: the campaign's default


def to_recipient(row: Any) -> Recipient:
    """A row of the recipients table as a :class:`Recipient`."""
    return Recipient(
        campaign_id=row.campaign_id, customer_id=row.customer_id, token=row.token, storyboard=row.storyboard,
        variant=row.variant, status=row.status, amount_due=row.amount_due, currency=row.currency,
        content_hash=row.content_hash, published_at=row.published_at, expires_at=row.expires_at,
        paid_at=row.paid_at, plan_installments=row.plan_installments, days_past_due=row.days_past_due,
        plan_first_due=row.plan_first_due, locale=row.locale)
