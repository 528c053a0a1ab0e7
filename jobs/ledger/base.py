"""What every part of the Ledger stands on: its URL, this process's engine, and one transaction per call.

The engine is made lazily in the process that uses it, so a ledger may be
made before a fork or pickled to a spawned worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from .engine import DEFAULT_URL, database_error, new_engine, transaction
from .migrate import bring_up_to_date
from .model import LedgerError


class LedgerBase:
    """The ledger's connection to one database; the parts of :class:`Ledger` add the calls."""

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

    def _ready(self) -> Engine:
        """This process's engine, made (and the schema brought up to date) on first use."""
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                return self._engine
            if self._engine is not None:       # inherited through fork: the parent's connections stay its own
                self._engine.dispose(close=False)
                self._engine = None
            engine = new_engine(self._url, self._where)
            try:
                bring_up_to_date(engine, self._where)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._pid = engine, os.getpid()
            return engine

    @contextmanager
    def _tx(self, call: str, *, write: bool = False) -> Iterator[Connection]:
        """One short transaction for ``call``; a database failure becomes a LedgerError naming it."""
        engine = self._ready()
        try:
            with transaction(engine, write=write) as conn:
                yield conn
        except DBAPIError as exc:
            raise database_error(self._where, call, exc) from exc


def now() -> datetime:
    """Aware UTC: what written rows are stamped with."""
    return datetime.now(UTC)


def try_insert(conn: Connection, stmt: Any) -> Any | None:
    """Run an INSERT in a savepoint; None when a constraint refused it (the transaction goes on)."""
    try:
        with conn.begin_nested():
            return conn.execute(stmt)
    except IntegrityError:
        return None
