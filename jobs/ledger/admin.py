"""The admin side's sign-in in the ledger: attempts counted per client, and sessions kept server-side.

Both live in the database so that every worker and host keeps the one count
and the one list of sessions. A client is a keyed hash of its address, made by
the caller: the ledger never sees an address. A session is found by the hash
of the secret its cookie carries: the ledger never holds the secret itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from . import checks
from .base import LedgerBase, serialize_on
from .model import LedgerError
from .schema import admin_session_table, signin_attempt_table

_HEX = re.compile(r"[0-9a-f]{32,64}")


@dataclass(frozen=True)
class SigninLimits:
    """At most ``per_client`` attempts of one client in any ``window``, and ``all_clients`` of all in any
    ``all_window``; an attempt that succeeds is taken back."""

    per_client: int
    window: timedelta
    all_clients: int
    all_window: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class AdminSession:
    """A session's row: what it was opened with and its times."""

    id: str
    token_mac: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def _hex(call: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise LedgerError("must be 32 to 64 lower-case hex digits (a hash)", where=call, field=field)
    return value


class Admin(LedgerBase):
    """Sign-in attempts and admin sessions."""

    def signin_attempt(self, client: str, at: datetime, limits: SigninLimits) -> float | None:
        """Count one sign-in attempt of ``client`` at ``at``; or, when that would pass a limit, count nothing
        and return the seconds until it would not.

        The count, the check and the new row share one writing transaction, serialized
        (SQLite's one writer; a transaction advisory lock on PostgreSQL), so simultaneous
        attempts from any number of workers and hosts never pass the limit. Rows older
        than the longer window go in the same transaction: the table stays small.
        """
        call = "signin_attempt"
        _hex(call, "client", client)
        at = checks.aware(call, "at", at)
        for name in ("per_client", "all_clients"):
            checks.integer(call, name, getattr(limits, name), least=1)

        def work(conn: Connection) -> float | None:
            serialize_on(conn, "signin")  # counting and adding one step, on every worker and host
            wait = _wait(conn, client, at, limits)
            if wait is not None:
                return wait
            conn.execute(delete(signin_attempt_table).where(
                signin_attempt_table.c.at <= at - max(limits.window, limits.all_window)))
            conn.execute(insert(signin_attempt_table).values(client=client, at=at))
            return None

        return self._write(call, work)

    def signin_allowed(self, client: str, at: datetime, limits: SigninLimits) -> tuple[float | None, bool]:
        """Whether an attempt of ``client`` at ``at`` would be within the limits, without counting it (a read):
        the seconds until it would be (None: now), and whether ``client`` has attempts counted.

        For a right token: it still waits out a limit, so that passing one tells nothing, and needs no write
        unless there are failures to take back.
        """
        call = "signin_allowed"
        _hex(call, "client", client)
        at = checks.aware(call, "at", at)
        with self._tx(call) as conn:
            counted = conn.execute(select(signin_attempt_table.c.id).where(
                signin_attempt_table.c.client == client).limit(1)).first() is not None
            return _wait(conn, client, at, limits), counted

    def signin_succeeded(self, client: str) -> None:
        """Forget ``client``'s attempts: the one that succeeded and the failures before it."""
        _hex("signin_succeeded", "client", client)
        self._write("signin_succeeded", lambda conn: conn.execute(
            delete(signin_attempt_table).where(signin_attempt_table.c.client == client)))

    def open_admin_session(self, *, session_id: str, token_mac: str, at: datetime, expires_at: datetime,
                           idle: timedelta) -> None:
        """Record a new session; sessions expired (at ``expires_at``, or idle for ``idle``) go in the same step."""
        call = "open_admin_session"
        at = checks.aware(call, "at", at)
        row = {"id": _hex(call, "session_id", session_id), "token_mac": _hex(call, "token_mac", token_mac),
               "created_at": at, "last_seen_at": at,
               "expires_at": checks.aware(call, "expires_at", expires_at), "revoked_at": None}
        table = admin_session_table

        def work(conn: Connection) -> None:
            conn.execute(delete(table).where((table.c.expires_at <= at) | (table.c.last_seen_at <= at - idle)))
            conn.execute(insert(table).values(**row))

        self._write(call, work)

    def admin_session(self, session_id: str) -> AdminSession | None:
        """The session with this id, or None."""
        if not isinstance(session_id, str) or not _HEX.fullmatch(session_id):
            return None
        with self._tx("admin_session") as conn:
            row = conn.execute(select(admin_session_table).where(admin_session_table.c.id == session_id)).first()
        return AdminSession(**row._mapping) if row is not None else None

    def touch_admin_session(self, session_id: str, at: datetime, every: timedelta) -> None:
        """Set the session's last-seen time to ``at`` unless it was set less than ``every`` before (so a busy
        session writes once in ``every``, however many workers serve it)."""
        call = "touch_admin_session"
        _hex(call, "session_id", session_id)
        at = checks.aware(call, "at", at)
        table = admin_session_table
        self._write(call, lambda conn: conn.execute(update(table).where(
            table.c.id == session_id, table.c.revoked_at.is_(None), table.c.last_seen_at <= at - every)
            .values(last_seen_at=at)))

    def revoke_admin_session(self, session_id: str, at: datetime) -> None:
        """Sign a session out: from now on its cookie opens nothing, wherever it was copied to."""
        call = "revoke_admin_session"
        _hex(call, "session_id", session_id)
        at = checks.aware(call, "at", at)
        table = admin_session_table
        self._write(call, lambda conn: conn.execute(
            update(table).where(table.c.id == session_id, table.c.revoked_at.is_(None)).values(revoked_at=at)))


def _wait(conn: Connection, client: str, at: datetime, limits: SigninLimits) -> float | None:
    """The seconds until one more attempt of ``client`` at ``at`` is within both limits; None: it is now."""
    waits = []
    mine = conn.execute(_NTH_OF_CLIENT, {"client": client, "skip": limits.per_client - 1}).scalar()
    if mine is not None and mine > at - limits.window:
        waits.append(mine + limits.window - at)
    every = conn.execute(_NTH_OF_ALL, {"skip": limits.all_clients - 1}).scalar()
    if every is not None and every > at - limits.all_window:
        waits.append(every + limits.all_window - at)
    return max(max(waits).total_seconds(), 0.0) if waits else None


# The time of the n-th newest attempt (n = skip + 1) of one client, and of all clients, through their indexes.
_NTH_OF_CLIENT = (select(signin_attempt_table.c.at).where(signin_attempt_table.c.client == bindparam("client"))
                  .order_by(signin_attempt_table.c.at.desc()).limit(1).offset(bindparam("skip")))
_NTH_OF_ALL = (select(signin_attempt_table.c.at).order_by(signin_attempt_table.c.at.desc())
               .limit(1).offset(bindparam("skip")))
