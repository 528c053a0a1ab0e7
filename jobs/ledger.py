"""The ledger: who was published under which link, what they owe, what they paid.

SQLAlchemy Core on any SQLAlchemy URL: a SQLite file by default (WAL, a busy
timeout and foreign keys on, so a few processes can share it), PostgreSQL when
configured. The schema is created on first use and versioned: ``MIGRATIONS``
lists the steps in order, and a database that is behind is brought up to date
in one transaction. The recipients table holds no personal data beyond the
customer_id: no names, emails or addresses ever reach it.

Every call runs in its own short transaction on a connection from an engine
that is created lazily in the process that uses it, so a ``Ledger`` may be made
before a fork or pickled to a spawned worker. On SQLite, writes open with
``BEGIN IMMEDIATE`` so that racing writers queue on the busy timeout instead of
failing on a lock upgrade. See ``docs/LEDGER.md``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from billcast.renderer import BillcastError

__all__ = [
    "DEFAULT_URL", "EVENT_KINDS", "MIGRATIONS", "OPTIONS", "PAYMENT_STATUSES", "PROVIDERS", "RECIPIENT_STATUSES",
    "SOURCES",
    "Ledger", "LedgerError", "Recipient",
]

DEFAULT_URL = "sqlite:///var/billcast.db"
RECIPIENT_STATUSES = ("pending", "published", "expired")
PAYMENT_STATUSES = ("pending", "paid", "failed", "expired")
PROVIDERS = ("stripe", "demo")
OPTIONS = ("full", "plan")
SOURCES = ("site", "video", "qr", "email", "other")  # other: a session Billcast did not make (no source given)
EVENT_KINDS = ("view", "play", "progress", "cta_click", "pay_click")

SQLITE_BUSY_SECONDS = 30.0
_PAGE = 1000       # rows per query when streaming
_IN_CHUNK = 500    # values per IN (...) list
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT_TEXT_MAX = 40


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


# --- column types ------------------------------------------------------------------------------


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

    impl = String(_AMOUNT_TEXT_MAX)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"not a finite Decimal: {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


# --- the schema as the code uses it (the newest version) ----------------------------------------

_metadata = MetaData()

_versions = Table("schema_version", _metadata, Column("version", Integer, nullable=False))

_campaigns = Table(
    "campaigns", _metadata,
    Column("id", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("link_days", Integer, nullable=False),
    Column("config_hash", String(128)),
)

_recipients = Table(
    "recipients", _metadata,
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
    Column("plan_installments", Integer),  # v2
    Column("days_past_due", Integer),  # v2
    UniqueConstraint("token", name="uq_recipients_token"),
    Index("ix_recipients_campaign_status", "campaign_id", "status"),
)

_payments = Table(
    "payments", _metadata,
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
    Column("expires_at", UTCDateTime),  # v2: when the checkout session stops taking payment
    Column("idempotency_key", String(255)),  # v2: the key the session was created with
    UniqueConstraint("provider_ref", name="uq_payments_provider_ref"),
    Index("ix_payments_campaign", "campaign_id"),
    Index("ix_payments_token", "token"),
)

_webhooks = Table(
    "webhook_events", _metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

_events = Table(
    "events", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(200), ForeignKey("campaigns.id"), nullable=False),
    Column("token", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Integer),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_events_campaign_kind", "campaign_id", "kind"),
    Index("ix_events_token", "token"),
)


# --- migrations: history, never edited once released ------------------------------------------

Migration = Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    """Version 1: campaigns, recipients, payments, webhook events, events.

    The tables are spelled out here rather than taken from the ones above, so
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


# Step n brings a database from version n-1 to n. Add a version by appending its
# function here (and changing the tables above to match what it leaves).
MIGRATIONS: tuple[Migration, ...] = (_v1, _v2)


def _stored_version(conn: Connection) -> int | None:
    """The database's schema version; None before the ledger was ever created there."""
    if not inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(select(func.max(_versions.c.version))).scalar_one_or_none() or 0


def _upgrade(conn: Connection, where: str) -> None:
    """Apply the steps the database lacks, in order, in the caller's transaction."""
    steps = MIGRATIONS
    current = _stored_version(conn)
    if current is None:
        _versions.create(conn)
        conn.execute(insert(_versions).values(version=0))
        current = 0
    _refuse_newer(current, where)
    for step in steps[current:]:
        step(conn)
    if current < len(steps) and not conn.execute(update(_versions).values(version=len(steps))).rowcount:
        conn.execute(insert(_versions).values(version=len(steps)))


def _refuse_newer(version: int, where: str) -> None:
    if version > len(MIGRATIONS):
        raise LedgerError(
            f"the database is at version {version}, this Billcast knows versions up to {len(MIGRATIONS)}; "
            "upgrade Billcast, or point it at another database",
            where=where, field="schema_version")


# --- engines ------------------------------------------------------------------------------------


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def _new_engine(url: URL, where: str) -> Engine:
    is_sqlite = url.get_backend_name() == "sqlite"
    if (path := _sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if is_sqlite:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ImportError, NoSuchModuleError) as exc:
        raise LedgerError(f"the database driver is not installed ({exc}); install it, e.g. "
                          "`pip install 'psycopg[binary]'` for postgresql://", where=where, field="driver") from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Hand transactions to SQLAlchemy (so DDL and savepoints are transactional); WAL, keys on."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front: they queue on the busy timeout, never deadlock."""
    writing = conn.get_execution_options().get("ledger_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


# --- checks at the edge -------------------------------------------------------------------------


def _one_of(call: str, field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LedgerError(f"must be one of {', '.join(allowed)}; got {value!r}", where=call, field=field)
    return str(value)


def _text(call: str, field: str, value: object, *, empty_ok: bool = False, limit: int = 200) -> str:
    if not isinstance(value, str) or (not value and not empty_ok) or len(value) > limit:
        raise LedgerError(f"must be a{'' if empty_ok else ' non-empty'} string of at most {limit} characters; "
                          f"got {type(value).__name__}", where=call, field=field)
    return value


def _token(call: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise LedgerError("must be 22 URL-safe characters (secrets.token_urlsafe(16))", where=call, field="token")
    return value


def _currency(call: str, value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise LedgerError(f"must be a 3-letter ISO 4217 code such as EUR; got {value!r}", where=call, field="currency")
    return value


def _amount(call: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or len(str(value)) > _AMOUNT_TEXT_MAX:
        raise LedgerError(f"must be a finite Decimal (never a float); got {type(value).__name__} {value!r}",
                          where=call, field="amount_due")
    return value


def _int(call: str, field: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LedgerError(f"must be an integer; got {type(value).__name__}", where=call, field=field)
    return value


def _optional_int(call: str, field: str, value: object, *, least: int) -> int | None:
    if value is None:
        return None
    if _int(call, field, value) < least:
        raise LedgerError(f"must be at least {least} (or None); got {value}", where=call, field=field)
    return value  # type: ignore[return-value]


def _aware(call: str, field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise LedgerError("must be a timezone-aware datetime", where=call, field=field)
    return value.astimezone(UTC)


def _hint(token: str) -> str:
    """A token is a secret: messages show only its first characters."""
    return token[:4] + "…"


def _now() -> datetime:
    return datetime.now(UTC)


def _to_recipient(row: Any) -> Recipient:
    return Recipient(
        campaign_id=row.campaign_id, customer_id=row.customer_id, token=row.token, storyboard=row.storyboard,
        variant=row.variant, status=row.status, amount_due=row.amount_due, currency=row.currency,
        content_hash=row.content_hash, published_at=row.published_at, expires_at=row.expires_at,
        paid_at=row.paid_at, plan_installments=row.plan_installments, days_past_due=row.days_past_due)


def _try_insert(conn: Connection, stmt: Any) -> Any | None:
    """Run an INSERT in a savepoint; None when a constraint refused it (the transaction goes on)."""
    try:
        with conn.begin_nested():
            return conn.execute(stmt)
    except IntegrityError:
        return None


# --- the ledger ---------------------------------------------------------------------------------


class Ledger:
    """The campaign ledger on one database. Cheap to make: connects and migrates on first use."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        try:
            self._url = make_url(url)
        except ArgumentError as exc:
            raise LedgerError(f"not a SQLAlchemy URL: {exc}", where="ledger", field="url") from exc
        self.url = url
        self._where = self._url.render_as_string(hide_password=True)
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger({self._where!r})"

    def __reduce__(self) -> tuple[type[Ledger], tuple[str]]:
        return (type(self), (self.url,))

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose(close=self._pid == os.getpid())

    # -- connections and transactions

    def _ready(self) -> Engine:
        """This process's engine, made (and the schema brought up to date) on first use."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:       # inherited through fork: the parent's connections stay its own
                self._engine.dispose(close=False)
                self._engine = None
            engine = _new_engine(self._url, self._where)
            try:
                self._open(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._pid = engine, os.getpid()
            return engine

    def _open(self, engine: Engine) -> None:
        """Check the version with a read; upgrade in a write transaction only when behind."""
        for attempt in range(3):
            try:
                with engine.connect() as conn, conn.begin():
                    version = _stored_version(conn)
                if version is not None:
                    _refuse_newer(version, self._where)
                    if version == len(MIGRATIONS):
                        return
                with engine.connect() as conn:
                    conn.execution_options(ledger_write=True)
                    with conn.begin():
                        _upgrade(conn, self._where)
                return
            except DBAPIError as exc:
                # Another process may have been creating the same tables (PostgreSQL): look again.
                if attempt == 2:
                    raise self._error("schema", exc) from exc

    @contextmanager
    def _tx(self, call: str, *, write: bool = False) -> Iterator[Connection]:
        engine = self._ready()
        try:
            with engine.connect() as conn:
                if write:
                    conn.execution_options(ledger_write=True)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self._error(call, exc) from exc

    def _error(self, call: str, exc: DBAPIError) -> LedgerError:
        # The first line only: PostgreSQL's DETAIL line would repeat values (tokens) into logs.
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return LedgerError(f"{type(exc.orig).__name__}: {first}", where=self._where, field=call)

    # -- campaigns and recipients

    def ensure_campaign(self, campaign_id: str, *, link_days: int, config_hash: str | None = None) -> None:
        """Insert the campaign, or update its link lifetime and config hash."""
        call = "ensure_campaign"
        _text(call, "campaign_id", campaign_id)
        if _int(call, "link_days", link_days) < 1:
            raise LedgerError(f"must be at least 1; got {link_days}", where=call, field="link_days")
        if config_hash is not None:
            _text(call, "config_hash", config_hash, limit=128)
        now = _now()
        values = {"link_days": link_days, "config_hash": config_hash, "updated_at": now}
        with self._tx(call, write=True) as conn:
            if _try_insert(conn, insert(_campaigns).values(id=campaign_id, created_at=now, **values)) is None:
                conn.execute(update(_campaigns).where(_campaigns.c.id == campaign_id).values(**values))

    def recipient(self, campaign_id: str, customer_id: str) -> Recipient | None:
        with self._tx("recipient") as conn:
            row = conn.execute(select(_recipients).where(_recipients.c.campaign_id == campaign_id,
                                                        _recipients.c.customer_id == customer_id)).first()
        return None if row is None else _to_recipient(row)

    def recipient_by_token(self, token: str) -> Recipient | None:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        with self._tx("recipient_by_token") as conn:
            row = conn.execute(select(_recipients).where(_recipients.c.token == token)).first()
        return None if row is None else _to_recipient(row)

    def recipients(self, campaign_id: str, *, status: str | None = None) -> Iterator[Recipient]:
        """The campaign's recipients by customer_id, read a page at a time (no transaction held open)."""
        if status is not None:
            _one_of("recipients", "status", status, RECIPIENT_STATUSES)
        query = select(_recipients).where(_recipients.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(_recipients.c.status == status)
        return self._pages("recipients", query, _recipients.c.customer_id, _to_recipient)

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

    def published_hashes(self, campaign_id: str) -> dict[str, str]:
        """customer_id -> content_hash of the campaign's published recipients: what a resumed run may skip."""
        query = select(_recipients.c.customer_id, _recipients.c.content_hash).where(
            _recipients.c.campaign_id == campaign_id, _recipients.c.status == "published",
            _recipients.c.content_hash.is_not(None))
        with self._tx("published_hashes") as conn:
            return {row.customer_id: row.content_hash for row in conn.execute(query)}

    def reserve(self, *, campaign_id: str, customer_id: str, token: str, storyboard: str, variant: str,
                amount_due: Decimal, currency: str) -> Recipient:
        """The recipient's row, inserting a pending one with ``token`` when there is none yet.

        Fixes a recipient's link before rendering: processes that reserve the
        same recipient at once all get the row that won, and so one token.
        """
        call = "reserve"
        values = self._recipient_values(call, campaign_id=campaign_id, customer_id=customer_id, token=token,
                                        storyboard=storyboard, variant=variant, amount_due=amount_due,
                                        currency=currency)
        key = (_recipients.c.campaign_id == campaign_id, _recipients.c.customer_id == customer_id)
        with self._tx(call, write=True) as conn:
            _try_insert(conn, insert(_recipients).values(**values, status="pending"))
            row = conn.execute(select(_recipients).where(*key)).first()
            if row is None:
                self._explain_refusal(conn, call, campaign_id, customer_id, token)
        return _to_recipient(row)

    def record_published(self, *, campaign_id: str, customer_id: str, token: str, storyboard: str, variant: str,
                         amount_due: Decimal, currency: str, content_hash: str | None, published_at: datetime,
                         expires_at: datetime, plan_installments: int | None = None,
                         days_past_due: int | None = None) -> None:
        """Record a recipient as published: one row per (campaign, customer), whoever calls it and how often.

        ``plan_installments`` is the record's ``debt.plan_offer.installments``
        (None: no plan on offer) and ``days_past_due`` its ``debt.days_past_due``
        (None: no arrears); both are replaced by each call, as the record says.
        """
        call = "record_published"
        values = self._recipient_values(call, campaign_id=campaign_id, customer_id=customer_id, token=token,
                                        storyboard=storyboard, variant=variant, amount_due=amount_due,
                                        currency=currency)
        if content_hash is not None:
            _text(call, "content_hash", content_hash, limit=128)
        values |= {"status": "published", "content_hash": content_hash,
                   "published_at": _aware(call, "published_at", published_at),
                   "expires_at": _aware(call, "expires_at", expires_at),
                   "plan_installments": _optional_int(call, "plan_installments", plan_installments, least=1),
                   "days_past_due": _optional_int(call, "days_past_due", days_past_due, least=0)}
        key = (_recipients.c.campaign_id == campaign_id, _recipients.c.customer_id == customer_id)
        with self._tx(call, write=True) as conn:
            if _try_insert(conn, insert(_recipients).values(**values)) is not None:
                return
            changes = {k: v for k, v in values.items() if k not in ("campaign_id", "customer_id")}
            try:
                with conn.begin_nested():
                    done = conn.execute(update(_recipients).where(*key).values(**changes)).rowcount
            except IntegrityError:
                done = 0
            if not done:
                self._explain_refusal(conn, call, campaign_id, customer_id, token)

    def _recipient_values(self, call: str, *, campaign_id: str, customer_id: str, token: str, storyboard: str,
                          variant: str, amount_due: Decimal, currency: str) -> dict[str, Any]:
        return {
            "campaign_id": _text(call, "campaign_id", campaign_id),
            "customer_id": _text(call, "customer_id", customer_id, limit=64),
            "token": _token(call, token),
            "storyboard": _text(call, "storyboard", storyboard),
            "variant": _text(call, "variant", variant, empty_ok=True),
            "amount_due": _amount(call, amount_due),
            "currency": _currency(call, currency),
            "updated_at": _now(),
        }

    @staticmethod
    def _explain_refusal(conn: Connection, call: str, campaign_id: str, customer_id: str, token: str) -> NoReturn:
        """Raise the reason a recipient's row could be neither inserted nor updated."""
        if conn.execute(select(_campaigns.c.id).where(_campaigns.c.id == campaign_id)).first() is None:
            raise LedgerError(f"campaign {campaign_id!r} is not in the ledger; call ensure_campaign first",
                              where=call, field="campaign_id")
        owner = conn.execute(select(_recipients.c.campaign_id, _recipients.c.customer_id)
                             .where(_recipients.c.token == token)).first()
        if owner is not None and (owner.campaign_id, owner.customer_id) != (campaign_id, customer_id):
            raise LedgerError(f"{_hint(token)} already belongs to another recipient; draw a new token",
                              where=f"{call}: customer {customer_id}", field="token")
        raise LedgerError("the database refused the row", where=f"{call}: customer {customer_id}")

    def due_for_expiry(self, campaign_id: str, now: datetime) -> list[Recipient]:
        """Published recipients whose link has expired by ``now``."""
        now = _aware("due_for_expiry", "now", now)
        query = select(_recipients).where(
            _recipients.c.campaign_id == campaign_id, _recipients.c.status == "published",
            _recipients.c.expires_at <= now).order_by(_recipients.c.customer_id)
        with self._tx("due_for_expiry") as conn:
            return [_to_recipient(row) for row in conn.execute(query)]

    def mark_expired(self, campaign_id: str, customer_ids: Iterable[str]) -> int:
        """Mark published recipients expired; returns how many changed (others are left alone)."""
        ids = list(dict.fromkeys(customer_ids))
        changed = 0
        now = _now()
        with self._tx("mark_expired", write=True) as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                changed += conn.execute(
                    update(_recipients).where(_recipients.c.campaign_id == campaign_id,
                                             _recipients.c.customer_id.in_(ids[start:start + _IN_CHUNK]),
                                             _recipients.c.status == "published")
                    .values(status="expired", updated_at=now)).rowcount
        return changed

    def counts(self, campaign_id: str) -> dict[str, int]:
        """status -> number of recipients, every status present (0 when none)."""
        query = (select(_recipients.c.status, func.count()).where(_recipients.c.campaign_id == campaign_id)
                 .group_by(_recipients.c.status))
        result = dict.fromkeys(RECIPIENT_STATUSES, 0)
        with self._tx("counts") as conn:
            result.update({status: count for status, count in conn.execute(query)})
        return result

    # -- payments and events (the payment service)

    def seen_webhook(self, event_id: str, type: str) -> bool:
        """True when this provider event was recorded before; records it otherwise, atomically."""
        _text("seen_webhook", "event_id", event_id, limit=255)
        _text("seen_webhook", "type", type, limit=100)
        stmt = insert(_webhooks).values(event_id=event_id, type=type, received_at=_now())
        with self._tx("seen_webhook", write=True) as conn:
            return _try_insert(conn, stmt) is None

    def forget_webhook(self, event_id: str) -> None:
        """Undo :meth:`seen_webhook` for an event whose handling failed, so the provider's retry is handled."""
        _text("forget_webhook", "event_id", event_id, limit=255)
        with self._tx("forget_webhook", write=True) as conn:
            conn.execute(delete(_webhooks).where(_webhooks.c.event_id == event_id))

    def upsert_payment(self, *, campaign_id: str, token: str, provider: str, provider_ref: str, amount: int,
                       currency: str, option: str, source: str, status: str, payment_intent: str | None = None,
                       flag_reason: str | None = None, expires_at: datetime | None = None,
                       idempotency_key: str | None = None) -> int:
        """Insert or update the payment with this ``provider_ref``; returns its id.

        A paid payment stays paid: later news of any other status changes only
        its payment_intent (when it had none) and its flag. A flag, once
        raised, stays raised. ``expires_at`` and ``idempotency_key`` (the
        checkout session's, as created) are set when given and kept otherwise.
        """
        call = "upsert_payment"
        values = {
            "campaign_id": _text(call, "campaign_id", campaign_id), "token": _token(call, token),
            "provider": _one_of(call, "provider", provider, PROVIDERS),
            "provider_ref": _text(call, "provider_ref", provider_ref, limit=255),
            "amount": _int(call, "amount", amount), "currency": _currency(call, currency),
            "option": _one_of(call, "option", option, OPTIONS), "source": _one_of(call, "source", source, SOURCES),
            "status": _one_of(call, "status", status, PAYMENT_STATUSES),
        }
        if payment_intent is not None:
            _text(call, "payment_intent", payment_intent, limit=255)
        if flag_reason is not None:
            _text(call, "flag_reason", flag_reason, limit=500)
        session: dict[str, Any] = {}
        if expires_at is not None:
            session["expires_at"] = _aware(call, "expires_at", expires_at)
        if idempotency_key is not None:
            session["idempotency_key"] = _text(call, "idempotency_key", idempotency_key, limit=255)
        with self._tx(call, write=True) as conn:
            row = self._payment_row(conn, provider_ref)
            if row is None:
                now = _now()
                inserted = _try_insert(conn, insert(_payments).values(
                    **values, **session, payment_intent=payment_intent, flagged=flag_reason is not None,
                    flag_reason=flag_reason, created_at=now, updated_at=now))
                if inserted is not None:
                    return int(inserted.inserted_primary_key[0])
                row = self._payment_row(conn, provider_ref)     # another process inserted it first
                if row is None:
                    raise LedgerError(f"campaign {campaign_id!r} is not in the ledger; call ensure_campaign first",
                                      where=call, field="campaign_id")
            self._merge_payment(conn, call, row, values, payment_intent, flag_reason, session)
            return int(row.id)

    @staticmethod
    def _payment_row(conn: Connection, provider_ref: str) -> Any | None:
        return conn.execute(select(_payments).where(_payments.c.provider_ref == provider_ref).with_for_update()).first()

    @staticmethod
    def _merge_payment(conn: Connection, call: str, row: Any, values: dict[str, Any], payment_intent: str | None,
                       flag_reason: str | None, session: dict[str, Any] | None = None) -> None:
        for field in ("campaign_id", "token", "provider"):
            if getattr(row, field) != values[field]:
                raise LedgerError(f"payment {row.id} was recorded with another {field}; a provider_ref names one "
                                  "payment of one recipient", where=call, field=field)
        changes: dict[str, Any] = {} if row.status == "paid" and values["status"] != "paid" else dict(values)
        if payment_intent is not None and (row.payment_intent is None or "status" in changes):
            changes["payment_intent"] = payment_intent
        if flag_reason is not None:
            changes |= {"flagged": True, "flag_reason": flag_reason}
        changes |= session or {}
        if changes:
            conn.execute(update(_payments).where(_payments.c.id == row.id).values(**changes, updated_at=_now()))

    def mark_paid(self, token: str, when: datetime) -> None:
        """Record that the recipient with this token paid; the first time paid is the one kept."""
        call = "mark_paid"
        _token(call, token)
        when = _aware(call, "when", when)
        with self._tx(call, write=True) as conn:
            row = conn.execute(select(_recipients.c.paid_at).where(_recipients.c.token == token)
                               .with_for_update()).first()
            if row is None:
                raise LedgerError(f"no recipient has the token {_hint(token)}", where=call, field="token")
            if row.paid_at is None or when < row.paid_at:
                conn.execute(update(_recipients).where(_recipients.c.token == token)
                             .values(paid_at=when, updated_at=_now()))

    def add_event(self, *, campaign_id: str, token: str, kind: str, value: int | None, at: datetime) -> None:
        """Record one thing a recipient did on their page or video."""
        call = "add_event"
        stmt = insert(_events).values(
            campaign_id=_text(call, "campaign_id", campaign_id), token=_token(call, token),
            kind=_one_of(call, "kind", kind, EVENT_KINDS), value=None if value is None else _int(call, "value", value),
            at=_aware(call, "at", at))
        with self._tx(call, write=True) as conn:
            conn.execute(stmt)

    def payment(self, provider_ref: str) -> dict[str, Any] | None:
        """The payment recorded under this provider reference (the checkout session id), or None."""
        if not isinstance(provider_ref, str) or not provider_ref or len(provider_ref) > 255:
            return None
        with self._tx("payment") as conn:
            row = conn.execute(select(_payments).where(_payments.c.provider_ref == provider_ref)).first()
        return None if row is None else dict(row._mapping)

    def payments_for_token(self, token: str) -> list[dict[str, Any]]:
        """The recipient's payments, oldest first (a recipient has a handful at most)."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return []
        with self._tx("payments_for_token") as conn:
            rows = conn.execute(select(_payments).where(_payments.c.token == token).order_by(_payments.c.id)).all()
        return [dict(row._mapping) for row in rows]

    def payments(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        """The campaign's payments in the order they were first recorded, one dict per row."""
        query = select(_payments).where(_payments.c.campaign_id == campaign_id)
        return self._pages("payments", query, _payments.c.id, lambda row: dict(row._mapping))

    def events(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        """The campaign's events in the order they were recorded, one dict per row."""
        query = select(_events).where(_events.c.campaign_id == campaign_id)
        return self._pages("events", query, _events.c.id, lambda row: dict(row._mapping))

    def schema_version(self) -> int:
        """The version of the database's schema (after bringing it up to date)."""
        with self._tx("schema_version") as conn:
            return _stored_version(conn) or 0
