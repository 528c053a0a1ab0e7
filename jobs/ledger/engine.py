"""Engines and transactions: SQLite with WAL, a busy timeout and foreign keys; PostgreSQL read-committed.

On SQLite a writing transaction opens with ``BEGIN IMMEDIATE``, so racing
writers queue on the busy timeout instead of failing on a lock upgrade. On
PostgreSQL every transaction is READ COMMITTED whatever the server's default:
the ledger's writes are single statements or rows locked first, and races are
settled by unique keys (``INSERT ... ON CONFLICT``), not by snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from .model import LedgerError

DEFAULT_URL = "sqlite:///var/billcast.db"
BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_SECONDS = 30.0
_TRANSIENT = ("40001", "40P01")  # PostgreSQL: serialization failure, deadlock detected: try again


def parse_url(url: str) -> tuple[URL, str]:
    """The parsed URL of a ledger and how messages name it (no password); SQLite or PostgreSQL only."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LedgerError(f"not a SQLAlchemy URL: {exc}", where="ledger", field="url") from exc
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in BACKENDS:
        raise LedgerError(f"the ledger runs on SQLite or PostgreSQL (sqlite:///FILE, postgresql+psycopg://...); "
                          f"got {parsed.get_backend_name()}", where=where, field="url")
    return parsed, where


def new_engine(url: URL, where: str) -> Engine:
    """An engine on ``url``; a SQLite file's folder is made when missing."""
    is_sqlite = url.get_backend_name() == "sqlite"
    if (path := sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if is_sqlite:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        else:
            engine = create_engine(url, pool_pre_ping=True, isolation_level="READ COMMITTED")
    except (ImportError, NoSuchModuleError) as exc:
        raise LedgerError(f"the database driver is not installed ({exc}); install it, e.g. "
                          "`pip install 'psycopg[binary]'` for postgresql://", where=where, field="driver") from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


@contextmanager
def transaction(engine: Engine, *, write: bool = False, statements: bool = False) -> Iterator[Connection]:
    """One transaction on a connection of its own; a writing one takes SQLite's write lock up front.

    ``statements``: on SQLite no transaction around them, each statement is its own (PostgreSQL: one
    transaction as ever). For a write that is a single statement: SQLite holds its write lock only
    while it runs that statement, with Python's GIL released, never across Python code between
    statements, where a thread waiting for the GIL would keep every other writer waiting.
    """
    with engine.connect() as conn:
        if write or statements:
            conn.execution_options(ledger_write=write, ledger_statements=statements)
        with conn.begin():
            yield conn


def is_transient(exc: DBAPIError) -> bool:
    """Whether the database asks for the transaction to be tried again (PostgreSQL's SQLSTATE class 40)."""
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT


def database_error(where: str, call: str, exc: DBAPIError) -> LedgerError:
    """A driver's failure as a LedgerError naming the database and the call."""
    # The first line only: PostgreSQL's DETAIL line would repeat values (tokens) into logs.
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return LedgerError(f"{type(exc.orig).__name__}: {first}", where=where, field=call)


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for another backend or an in-memory database."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


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
    options = conn.get_execution_options()
    if options.get("ledger_statements", False):
        return  # each statement its own transaction (SQLite's autocommit); COMMIT then has nothing to do
    # Straight to the driver: no statement to compile or result to wrap, on every transaction.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if options.get("ledger_write", False) else "BEGIN")
