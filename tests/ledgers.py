"""Ledger databases seen from outside: plain SQL, their tables and columns; ledgers as written before Alembic.

``make_legacy`` makes a ledger with the ``schema_version`` table at version 1,
2 or 3, through the released ``_v1``, ``_v2`` and ``_v3`` of the hand-written
migrations Alembic replaced, kept here verbatim: the tests upgrade databases
exactly as those versions left them, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (Boolean, Column, Connection, DateTime, Float, ForeignKey, Index, Integer, MetaData, String,
                        Table, UniqueConstraint, create_engine, insert, inspect, text)

from billcast.jobs.ledger.schema import UTCDateTime

HEAD = "0006"  # the ledger's head revision: the one place tests name it (tests check head_revision() agrees)


def query(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


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


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3)


def make_legacy(url: str, version: int) -> None:
    """A ledger at ``version`` as the old code left it: its steps and its one-row version table, in one transaction."""
    engine = create_engine(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        with engine.begin() as conn:
            version_table = Table("schema_version", MetaData(), Column("version", Integer, nullable=False))
            version_table.create(conn)
            for step in MIGRATIONS[:version]:
                step(conn)
            conn.execute(insert(version_table).values(version=version))
    finally:
        engine.dispose()
