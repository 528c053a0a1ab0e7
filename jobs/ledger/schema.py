"""The ledger's tables as the code uses them (the head revision) and their column types.

Only the shape lives here; how a database gets to it is the business of the
revisions in ``migrations/versions``. A test checks that a database at head has
exactly these tables, columns, types, keys and indexes (Alembic's comparison).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

AMOUNT_TEXT_MAX = 40  # characters of an amount's text


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; UTC in the database (naive where the backend has no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the ledger stores aware UTC times only")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal kept as its text (``"0.10"`` stays ``Decimal("0.10")``); never a float."""

    impl = String(AMOUNT_TEXT_MAX)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


metadata = MetaData()

campaign_table = Table(
    "campaigns", metadata,
    Column("id", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("link_days", Integer, nullable=False),
    Column("config_hash", String(128)),
)

recipient_table = Table(
    "recipients", metadata,
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("storyboard", String(200), nullable=False),
    Column("variant", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount_due", DecimalText, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("content_hash", String(128)),
    Column("published_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("paid_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("plan_installments", Integer),  # 0002
    Column("days_past_due", Integer),  # 0002
    UniqueConstraint("token", name="uq_recipients_token"),
    Index("ix_recipients_campaign_status", "campaign_id", "status"),
)

payment_table = Table(
    "payments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("token", String(32), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_ref", String(255), nullable=False),
    Column("payment_intent", String(255)),
    Column("amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("option", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("flag_reason", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),  # 0002: when the checkout session stops taking payment
    Column("idempotency_key", String(255)),  # 0002: the key the session was created with
    UniqueConstraint("provider_ref", name="uq_payments_provider_ref"),
    Index("ix_payments_campaign", "campaign_id"),
    Index("ix_payments_token", "token"),
)

webhook_table = Table(
    "webhook_events", metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

event_table = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("token", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Integer),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_events_campaign_kind", "campaign_id", "kind"),
    Index("ix_events_token", "token"),
)

allocation_table = Table(  # 0003: one row per customer an experiment covers, whatever was done for them
    "allocations", metadata,
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("wave", Integer, nullable=False),
    Column("segment", String(300), nullable=False),
    Column("arm", String(32)),  # NULL: held out
    Column("propensity", Float, nullable=False),
    Column("allocated_at", UTCDateTime, nullable=False),
    Index("ix_allocations_campaign_segment_wave", "campaign_id", "segment", "wave"),
)

share_table = Table(  # 0003: a wave's shares per segment, computed once and reused on every re-run
    "experiment_shares", metadata,
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
    Column("wave", Integer, primary_key=True),
    Column("segment", String(300), primary_key=True),
    Column("shares", String(2000), nullable=False),  # JSON: {"arm": share, ...}
    Column("computed_at", UTCDateTime, nullable=False),
)

outcome_table = Table(  # 0003: payments from the creditor's own books, imported to measure every group alike
    "experiment_outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("paid_at", UTCDateTime, nullable=False),
    Column("amount", Integer, nullable=False),  # minor units
    Column("currency", String(3), nullable=False),
    Column("reference", String(200), nullable=False),  # the import's own id for the payment: imported once
    UniqueConstraint("campaign_id", "reference", name="uq_experiment_outcomes_reference"),
    Index("ix_experiment_outcomes_customer", "campaign_id", "customer_id"),
)
