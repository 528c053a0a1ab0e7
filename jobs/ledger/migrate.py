"""Schema versions and the in-place upgrade: ``MIGRATIONS`` lists the steps, never edited once released.

A database that is behind is brought up to date in one transaction; one that
is ahead of this code is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from .engine import database_error, transaction
from .model import LedgerError
from .schema import UTCDateTime, version_table

Migration = Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    """Version 1: campaigns, recipients, payments, webhook events, events.

    The tables are spelled out here rather than taken from ``schema``, so
    that this step keeps creating version 1 after a later version changes them.
    """
    md = MetaData()
    Table("campaigns", md,
          Column("id", String(200), primary_key=True), Column("created_at", UTCDateTime, nullable=False),
          Column("updated_at", UTCDateTime, nullable=False), Column("link_days", Integer, nullable=False),
          Column("config_hash", String(128)))
    Table("recipients", md,
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
          Column("customer_id", String(64), primary_key=True), Column("token", String(32), nullable=False),
          Column("storyboard", String(200), nullable=False), Column("variant", String(200), nullable=False),
          Column("status", String(16), nullable=False), Column("amount_due", String(40), nullable=False),
          Column("currency", String(3), nullable=False), Column("content_hash", String(128)),
          Column("published_at", UTCDateTime), Column("expires_at", UTCDateTime), Column("paid_at", UTCDateTime),
          Column("updated_at", UTCDateTime, nullable=False),
          UniqueConstraint("token", name="uq_recipients_token"),
          Index("ix_recipients_campaign_status", "campaign_id", "status"))
    Table("payments", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
          Column("token", String(32), nullable=False), Column("provider", String(16), nullable=False),
          Column("provider_ref", String(255), nullable=False), Column("payment_intent", String(255)),
          Column("amount", Integer, nullable=False), Column("currency", String(3), nullable=False),
          Column("option", String(16), nullable=False), Column("source", String(16), nullable=False),
          Column("status", String(16), nullable=False), Column("flagged", Boolean, nullable=False),
          Column("flag_reason", String(500)), Column("created_at", UTCDateTime, nullable=False),
          Column("updated_at", UTCDateTime, nullable=False),
          UniqueConstraint("provider_ref", name="uq_payments_provider_ref"),
          Index("ix_payments_campaign", "campaign_id"), Index("ix_payments_token", "token"))
    Table("webhook_events", md,
          Column("event_id", String(255), primary_key=True), Column("type", String(100), nullable=False),
          Column("received_at", UTCDateTime, nullable=False))
    Table("events", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
          Column("token", String(32), nullable=False), Column("kind", String(16), nullable=False),
          Column("value", Integer), Column("at", UTCDateTime, nullable=False),
          Index("ix_events_campaign_kind", "campaign_id", "kind"), Index("ix_events_token", "token"))
    md.create_all(conn)


def _v2(conn: Connection) -> None:
    """Version 2: what the payment service needs.

    ``recipients.plan_installments`` and ``recipients.days_past_due`` (nullable
    integers from the record's debt), and on ``payments`` the checkout session's
    ``expires_at`` and the ``idempotency_key`` it was created with (so a second
    click reuses the open session with the very same parameters). Rows already
    there keep their values; the new columns are null in them.
    """
    timestamp = DateTime(timezone=True).compile(dialect=conn.dialect)
    for table, column, kind in (("recipients", "plan_installments", "INTEGER"),
                                ("recipients", "days_past_due", "INTEGER"),
                                ("payments", "expires_at", timestamp),
                                ("payments", "idempotency_key", "VARCHAR(255)")):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _v3(conn: Connection) -> None:
    """Version 3: experiments. Each customer's allocation (wave, segment, arm or holdout, propensity), each
    wave's shares per segment, and payments imported from the creditor's books to measure every group."""
    md = MetaData()
    Table("campaigns", md, Column("id", String(200), primary_key=True))
    Table("allocations", md,
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
          Column("customer_id", String(64), primary_key=True), Column("wave", Integer, nullable=False),
          Column("segment", String(300), nullable=False), Column("arm", String(32)),
          Column("propensity", Float, nullable=False), Column("allocated_at", UTCDateTime, nullable=False),
          Index("ix_allocations_campaign_segment_wave", "campaign_id", "segment", "wave"))
    Table("experiment_shares", md,
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
          Column("wave", Integer, primary_key=True), Column("segment", String(300), primary_key=True),
          Column("shares", String(2000), nullable=False), Column("computed_at", UTCDateTime, nullable=False))
    Table("experiment_outcomes", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
          Column("customer_id", String(64), nullable=False), Column("paid_at", UTCDateTime, nullable=False),
          Column("amount", Integer, nullable=False), Column("currency", String(3), nullable=False),
          Column("reference", String(200), nullable=False),
          UniqueConstraint("campaign_id", "reference", name="uq_experiment_outcomes_reference"),
          Index("ix_experiment_outcomes_customer", "campaign_id", "customer_id"))
    for name in ("allocations", "experiment_shares", "experiment_outcomes"):
        md.tables[name].create(conn)


def _v4(conn: Connection) -> None:
    """Version 4: the debtor's journey. On ``recipients`` the plan's first due date and the page's locale (and an
    index on customer_id for the frequency cap); on ``payments`` the installment number; new tables for
    opt-outs (``suppressions``), ``disputes``, what a run held back (``withheld``), ``plans`` and their
    ``installments``. Spelled out here, as the earlier steps are, so the step never changes."""
    for table, column, kind in (("recipients", "plan_first_due", "DATE"), ("recipients", "locale", "VARCHAR(35)"),
                                ("payments", "installment", "INTEGER")):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    conn.exec_driver_sql("CREATE INDEX ix_recipients_customer ON recipients (customer_id, published_at)")
    md = MetaData()
    Table("campaigns", md, Column("id", String(200), primary_key=True))
    Table("suppressions", md,
          Column("customer_id", String(64), primary_key=True), Column("channel", String(16), primary_key=True),
          Column("reason", String(64), nullable=False), Column("source", String(32), nullable=False),
          Column("campaign_id", String(200)), Column("created_at", UTCDateTime, nullable=False))
    Table("disputes", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
          Column("customer_id", String(64), nullable=False), Column("token", String(32), nullable=False),
          Column("reason", String(32), nullable=False), Column("details", String(500)),
          Column("status", String(16), nullable=False), Column("outcome", String(16)),
          Column("opened_at", UTCDateTime, nullable=False), Column("resolved_at", UTCDateTime),
          Index("ix_disputes_customer_status", "customer_id", "status"),
          Index("ix_disputes_campaign_status", "campaign_id", "status"))
    Table("withheld", md,
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), primary_key=True),
          Column("customer_id", String(64), primary_key=True), Column("storyboard", String(200), nullable=False),
          Column("variant", String(200), nullable=False), Column("status", String(16), nullable=False),
          Column("reason", String(64), nullable=False), Column("send_after", UTCDateTime),
          Column("at", UTCDateTime, nullable=False))
    Table("plans", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
          Column("token", String(32), nullable=False), Column("provider", String(16), nullable=False),
          Column("provider_customer", String(255)), Column("payment_method", String(255)),
          Column("currency", String(3), nullable=False), Column("total", Integer, nullable=False),
          Column("installment_count", Integer, nullable=False), Column("status", String(16), nullable=False),
          Column("failures", Integer, nullable=False), Column("created_at", UTCDateTime, nullable=False),
          Column("updated_at", UTCDateTime, nullable=False),
          UniqueConstraint("token", name="uq_plans_token"),
          Index("ix_plans_campaign_status", "campaign_id", "status"))
    Table("installments", md,
          Column("plan_id", Integer, ForeignKey("plans.id"), primary_key=True),
          Column("number", Integer, primary_key=True), Column("due_date", Date, nullable=False),
          Column("amount", Integer, nullable=False), Column("status", String(16), nullable=False),
          Column("attempt", Integer, nullable=False), Column("payment_intent", String(255)),
          Column("claimed_at", UTCDateTime), Column("paid_at", UTCDateTime), Column("error_code", String(64)),
          Column("updated_at", UTCDateTime, nullable=False),
          Index("ix_installments_status_due", "status", "due_date"))
    for name in ("suppressions", "disputes", "withheld", "plans", "installments"):
        md.tables[name].create(conn)


# Step n brings a database from version n-1 to n. Add a version by appending its
# function here (and changing the tables in schema.py to match what it leaves).
MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3, _v4)


def bring_up_to_date(engine: Engine, where: str) -> None:
    """Check the version with a read; upgrade in a write transaction only when behind."""
    for attempt in range(3):
        try:
            with transaction(engine) as conn:
                version = stored_version(conn)
            if version is not None:
                _refuse_newer(version, where)
                if version == len(MIGRATIONS):
                    return
            with transaction(engine, write=True) as conn:
                _upgrade(conn, where)
            return
        except DBAPIError as exc:
            # Another process may have been creating the same tables (PostgreSQL): look again.
            if attempt == 2:
                raise database_error(where, "schema", exc) from exc


def stored_version(conn: Connection) -> int | None:
    """The database's schema version; None before the ledger was ever created there."""
    if not inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(select(func.max(version_table.c.version))).scalar_one_or_none() or 0


def _upgrade(conn: Connection, where: str) -> None:
    """Apply the steps the database lacks, in order, in the caller's transaction."""
    steps = MIGRATIONS
    current = stored_version(conn)
    if current is None:
        version_table.create(conn)
        conn.execute(insert(version_table).values(version=0))
        current = 0
    _refuse_newer(current, where)
    for step in steps[current:]:
        step(conn)
    if current < len(steps) and not conn.execute(update(version_table).values(version=len(steps))).rowcount:
        conn.execute(insert(version_table).values(version=len(steps)))


def _refuse_newer(version: int, where: str) -> None:
    if version > len(MIGRATIONS):
        raise LedgerError(
            f"the database is at version {version}, this Billcast knows versions up to {len(MIGRATIONS)}; "
            "upgrade Billcast, or point it at another database",
            where=where, field="schema_version")
