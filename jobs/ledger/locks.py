"""A campaign's run lock: one ``billcast run`` of a campaign at a time, whichever host it runs on.

A second run started meanwhile waits for the first to finish, then publishes
only what the first did not: each recipient is rendered and published once.
PostgreSQL holds it as a session advisory lock, SQLite as a ``flock`` on a file
beside the database; either goes with the process that held it, however it ends.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .base import LedgerBase
from .engine import database_error, sqlite_file


def lock_key(campaign_id: str) -> int:
    """The campaign's advisory lock key: 64 bits of a hash of its id, signed as PostgreSQL's bigint."""
    return int.from_bytes(hashlib.sha256(b"billcast run " + campaign_id.encode()).digest()[:8], "big", signed=True)


class Locks(LedgerBase):
    """The run lock of each campaign."""

    @contextmanager
    def campaign_lock(self, campaign_id: str, *, waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
        """Hold the campaign's run lock for the block; ``waiting`` is called first if another process holds it."""
        if self._url.get_backend_name() == "postgresql":
            with self._advisory_lock(lock_key(campaign_id), waiting):
                yield
            return
        path = sqlite_file(self._url)
        if path is None:  # an in-memory database is one process's alone
            yield
            return
        with _file_lock(path.with_name(f"{path.name}.run-{lock_key(campaign_id) & (2**64 - 1):016x}.lock"), waiting):
            yield

    @contextmanager
    def _advisory_lock(self, key: int, waiting: Callable[[], None]) -> Iterator[None]:
        """A session advisory lock on a connection of its own, out of any transaction while it is held."""
        conn = self._ready().connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                waiting()
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except DBAPIError as exc:
            conn.close()
            raise database_error(self._where, "campaign_lock", exc) from exc
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except DBAPIError:
                conn.invalidate()  # closing the session releases the lock all the same
            conn.close()


@contextmanager
def _file_lock(path: Path, waiting: Callable[[], None]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
