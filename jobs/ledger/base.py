"""What every part of the Ledger stands on: its URL, this process's engine, and one transaction per call.

The engine is made lazily in the process that uses it, so a ledger may be
made before a fork or pickled to a spawned worker. Writes that race are
settled by the database: ``INSERT ... ON CONFLICT`` on unique keys (SQLite and
PostgreSQL both speak it), and a PostgreSQL transaction the server asks to be
tried again (a deadlock, a serialization failure) is run again.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Engine, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from .engine import DEFAULT_URL, database_error, is_transient, new_engine, parse_url, transaction
from .migrate import open_schema
from .model import LedgerError
from .schema import campaign_table

T = TypeVar("T")
WRITE_ATTEMPTS = 5  # a transaction PostgreSQL asks to be tried again is run at most this often


class LedgerBase:
    """The ledger's connection to one database; the parts of :class:`Ledger` add the calls."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self._url, self._where = parse_url(url)
        self.url = url
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger({self._where!r})"

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        return (type(self), (self.url,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose(close=self._pid == os.getpid())

    def open(self) -> None:
        """Connect now and check the schema (created or upgraded as docs/LEDGER.md says, or refused)."""
        self._ready()

    def _ready(self) -> Engine:
        """This process's engine, made (and the schema checked) on first use."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:       # inherited through fork: the parent's connections stay its own
                self._engine.dispose(close=False)
                self._engine = None
            engine = new_engine(self._url, self._where)
            try:
                open_schema(engine, self._where)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._pid = engine, os.getpid()
            return engine

    @contextmanager
    def _tx(self, call: str) -> Iterator[Connection]:
        """One short reading transaction for ``call``; a database failure becomes a LedgerError (writes: _write)."""
        engine = self._ready()
        try:
            with transaction(engine) as conn:
                yield conn
        except DBAPIError as exc:
            raise database_error(self._where, call, exc) from exc

    def _write(self, call: str, work: Callable[[Connection], T], *,
               refused: Callable[[Connection], None] | None = None, statements: bool = False) -> T:
        """``work`` in one writing transaction, run again when PostgreSQL asks to; its result.

        When a constraint refuses a row (a foreign or unique key), ``refused``
        looks in a transaction of its own and says why by raising a LedgerError.
        ``statements``: on SQLite each statement of ``work`` is a transaction of its own
        (see :func:`~.engine.transaction`); for work whose write is one statement.
        """
        engine = self._ready()
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with transaction(engine, write=not statements, statements=statements) as conn:
                    return work(conn)
            except IntegrityError as exc:
                if refused is not None:
                    with self._tx(call) as conn:
                        refused(conn)
                raise database_error(self._where, call, exc) from exc
            except DBAPIError as exc:
                if attempt == WRITE_ATTEMPTS or not is_transient(exc):
                    raise database_error(self._where, call, exc) from exc
                time.sleep(random.uniform(0, 0.02 * 2 ** attempt))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")


def now() -> datetime:
    """Aware UTC: what written rows are stamped with."""
    return datetime.now(UTC)


def insert_into(conn: Connection, table: Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the dialect of ``conn`` (SQLite's or PostgreSQL's)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def missing_campaign(conn: Connection, call: str, campaign_id: str) -> None:
    """Say so when a row was refused because its campaign is not in the ledger (call ensure_campaign first)."""
    if conn.execute(select(campaign_table.c.id).where(campaign_table.c.id == campaign_id)).first() is None:
        raise LedgerError(f"campaign {campaign_id!r} is not in the ledger; call ensure_campaign first",
                          where=call, field="campaign_id")


def serialize_on(conn: Connection, key: str) -> None:
    """Hold ``key``'s lock to the end of this transaction: writers of one key go one at a time.

    For a check-then-insert with no row yet to lock (one open dispute per customer):
    PostgreSQL takes a transaction advisory lock on a 64-bit hash of ``key``; a SQLite
    writer already holds the database's one write lock.
    """
    if conn.dialect.name == "postgresql":
        number = int.from_bytes(hashlib.sha256(b"billcast " + key.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})
