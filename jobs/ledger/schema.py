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
    Date,
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
    Column("plan_first_due", Date),  # 0004: debt.plan_offer.first_due_date, for the plan's schedule
    Column("locale", String(35)),  # 0004: the page's language, for the opt-out and dispute pages
    UniqueConstraint("token", name="uq_recipients_token"),
    Index("ix_recipients_campaign_status", "campaign_id", "status"),
    Index("ix_recipients_customer", "customer_id", "published_at"),  # 0004: messages per customer, across campaigns
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
    Column("installment", Integer),  # 0004: which installment of a plan this payment is
    UniqueConstraint("provider_ref", name="uq_payments_provider_ref"),
    Index("ix_payments_campaign", "campaign_id"),
    Index("ix_payments_token", "token"),
    Index("uq_payments_idempotency_key", "idempotency_key", unique=True),  # 0005: one session per key
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
    # 0006: what a beacon counts once by (see jobs/ledger/events.py): NULL on clicks and on rows from before
    Column("once", String(16)),  # "view", "play", "progress:25"...; NULL: a click, counted every time
    Column("visitor", String(16)),  # the server's daily keyed hash of address and User-Agent (never either)
    Column("session", String(22)),  # the page's random id for one browser tab; NULL from a page without one
    Index("ix_events_campaign_kind", "campaign_id", "kind"),
    Index("ix_events_token", "token"),
    Index("uq_events_once_visitor", "token", "once", "visitor", unique=True),  # 0006
    Index("uq_events_once_session", "token", "once", "session", unique=True),  # 0006
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


# --- 0004: the debtor's journey: opt-outs, disputes, what a run held back, installment plans ---------

suppression_table = Table(  # who must not be contacted on a channel ("all": on any), whoever asked
    "suppressions", metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("reason", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("campaign_id", String(200)),  # the campaign whose message it came from; NULL for an import
    Column("created_at", UTCDateTime, nullable=False),
)

dispute_table = Table(  # a debtor's dispute of an amount, from their page; no collection while open
    "disputes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("token", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("details", String(500)),  # the debtor's own words, at most 500 characters; never logged
    Column("status", String(16), nullable=False),  # open | resolved
    Column("outcome", String(16)),  # upheld | corrected | withdrawn
    Column("opened_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Index("ix_disputes_customer_status", "customer_id", "status"),
    Index("ix_disputes_campaign_status", "campaign_id", "status"),
)

withheld_table = Table(  # a run's recipients it did not contact: suppressed, or deferred by the frequency cap
    "withheld", metadata,
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
    Column("storyboard", String(200), nullable=False),
    Column("variant", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # suppressed | deferred
    Column("reason", String(64), nullable=False),
    Column("send_after", UTCDateTime),  # deferred: when sending becomes allowed
    Column("at", UTCDateTime, nullable=False),
)

plan_table = Table(  # an installment plan, made when its first installment is paid
    "plans", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("token", String(32), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_customer", String(255)),  # the provider's customer the card is saved on
    Column("payment_method", String(255)),  # the saved card
    Column("currency", String(3), nullable=False),
    Column("total", Integer, nullable=False),  # minor units: the balance the plan pays
    Column("installment_count", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active | needs_card | broken | completed
    Column("failures", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("token", name="uq_plans_token"),
    Index("ix_plans_campaign_status", "campaign_id", "status"),
)

installment_table = Table(  # one row per installment of a plan; claimed by a conditional update before charging
    "installments", metadata,
    Column("plan_id", Integer, ForeignKey("plans.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("amount", Integer, nullable=False),  # minor units
    Column("status", String(16), nullable=False),  # scheduled | charging | submitted | paid | failed
    Column("attempt", Integer, nullable=False),  # charges tried; each has its own idempotency key
    Column("payment_intent", String(255)),
    Column("claimed_at", UTCDateTime),
    Column("paid_at", UTCDateTime),
    Column("error_code", String(64)),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_installments_status_due", "status", "due_date"),
)


# --- 0005: the admin side's sign-in: attempts counted per client, sessions kept server-side --------

signin_attempt_table = Table(  # a sign-in attempt not (yet) known to have succeeded; pruned after the window
    "signin_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),  # a keyed hash of the client's address, never the address
    Column("at", UTCDateTime, nullable=False),
    Index("ix_signin_attempts_client_at", "client", "at"),
    Index("ix_signin_attempts_at", "at"),
)

admin_session_table = Table(  # a signed-in admin's session; the cookie holds the secret whose hash is the id
    "admin_sessions", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 (hex) of the cookie's 32-byte secret
    Column("token_mac", String(64), nullable=False),  # HMAC of the admin token it was opened with
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_admin_sessions_expires", "expires_at"),
)
