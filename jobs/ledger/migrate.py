"""Schema revisions: Alembic runs the revisions shipped in ``migrations/``, configured in code (no ini file).

Who changes a database's schema, and when (docs/LEDGER.md, "Migrations"):

- an empty database gets the whole schema on first use, on either backend;
- a SQLite ledger that is behind is upgraded when opened (one machine, the demo);
- a PostgreSQL ledger that is behind is refused until ``billcast db upgrade`` ran:
  services and runs on many hosts share it, and an operator upgrades it once, on purpose;
- a database at a revision this code does not know (a newer Billcast's) is always refused.

Every upgrade runs in one transaction under a lock (SQLite's write lock, a
PostgreSQL advisory lock), so racing processes upgrade once and a failing
revision leaves the database as it was. A database from before Alembic, whose
``schema_version`` table says 1, 2 or 3, is taken over as revision 0001, 0002 or 0003.
"""

from __future__ import annotations

import time

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from .engine import database_error, new_engine, parse_url, sqlite_file, transaction
from .model import LedgerError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}  # schema_version before Alembic -> the revision it is
UPGRADE_COMMAND = "billcast db upgrade"
_LOCK_KEY = 0x62696C6C63617374  # "billcast": the advisory lock schema changes take on PostgreSQL


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against this code's revisions."""

    revision: str | None  # None: no ledger there yet
    head: str  # the newest revision this code knows
    known: bool  # whether this code knows ``revision`` (an empty database counts as known)
    legacy: bool = False  # the revision is read from the schema_version table of before Alembic

    @property
    def empty(self) -> bool:
        return self.revision is None

    @property
    def at_head(self) -> bool:
        return self.revision == self.head and not self.legacy


OPEN_ATTEMPTS = 5


@lru_cache(maxsize=4)
def _script(folder: Path) -> ScriptDirectory:
    return ScriptDirectory(str(folder))


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _script(MIGRATIONS_DIR).get_current_head()
    assert head is not None, f"{MIGRATIONS_DIR}: no revisions"
    return head


def read_state(conn: Connection) -> SchemaState:
    """The database's revision, read on ``conn``, against this code's."""
    script = _script(MIGRATIONS_DIR)
    head = head_revision()
    tables = inspect(conn)
    legacy = False
    if tables.has_table("alembic_version"):
        revision = MigrationContext.configure(conn).get_current_revision()
    elif tables.has_table("schema_version"):
        version = conn.execute(text("SELECT max(version) FROM schema_version")).scalar() or 0
        revision, legacy = LEGACY_REVISIONS.get(version, f"schema_version {version}"), True
    else:
        revision = None
    known = revision is None or revision in {s.revision for s in script.walk_revisions()}
    return SchemaState(revision, head, known, legacy)


def open_schema(engine: Engine, where: str) -> None:
    """What opening a ledger does to its schema: nothing at head; else create or upgrade it, or refuse.

    Processes opening a new SQLite file at the same moment can find it locked while another one sets it
    up (switching it to WAL is not covered by the busy timeout): they look again, a few times.
    """
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open_schema(engine, where)
        except LedgerError as exc:
            locked = isinstance(exc.__cause__, DBAPIError) and "locked" in str(exc.__cause__)
            if not locked or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _open_schema(engine: Engine, where: str) -> None:
    try:
        with transaction(engine) as conn:
            state = read_state(conn)
    except DBAPIError as exc:
        raise database_error(where, "schema", exc) from exc
    if state.at_head:
        return
    _refuse_unknown(state, where)
    auto = engine.dialect.name == "sqlite"
    if not state.empty and not auto:
        raise _behind(state, where)
    upgrade(engine, where, only_empty=not auto)


def upgrade(engine: Engine, where: str, *, only_empty: bool = False) -> tuple[SchemaState, SchemaState]:
    """Bring the database to the head revision in one transaction under the schema lock; (before, after).

    ``only_empty``: create the schema in an empty database, refuse one that is behind.
    """
    try:
        with transaction(engine, write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            before = read_state(conn)  # again, under the lock: another process may have just done it
            _refuse_unknown(before, where)
            if before.at_head:
                return before, before
            if only_empty and not before.empty:
                raise _behind(before, where)
            _run_revisions(conn, before)
            after = read_state(conn)
    except DBAPIError as exc:
        raise database_error(where, "schema", exc) from exc
    except CommandError as exc:
        raise LedgerError(f"the migrations cannot run: {exc}", where=where, field="schema") from exc
    return before, after


def _run_revisions(conn: Connection, before: SchemaState) -> None:
    """Alembic's upgrade to head on ``conn``, inside its transaction; a database from before Alembic first stamped."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    if before.legacy:
        command.stamp(config, before.revision)
        conn.execute(text("DROP TABLE schema_version"))
    command.upgrade(config, "head")


def _refuse_unknown(state: SchemaState, where: str) -> None:
    if not state.known:
        raise LedgerError(f"the database is at revision {state.revision}, which this Billcast does not know (its "
                          f"newest is {state.head}); upgrade Billcast, or point it at another database",
                          where=where, field="schema")


def _behind(state: SchemaState, where: str) -> LedgerError:
    found = (f"still has the schema_version table from before Alembic (revision {state.revision}), this Billcast "
             f"needs alembic_version at {state.head}" if state.legacy
             else f"is at revision {state.revision}, this Billcast needs {state.head}")
    return LedgerError(f"the database {found}; run `{UPGRADE_COMMAND}` for this ledger first",
                       where=where, field="schema")


def schema_state(url: str) -> SchemaState:
    """The revision of the ledger at ``url``, read without changing anything (``billcast db current``)."""
    parsed, where = parse_url(url)
    if (path := sqlite_file(parsed)) is not None and not path.exists():
        return SchemaState(None, head_revision(), True)  # looking must not make the file
    engine = new_engine(parsed, where)
    try:
        with transaction(engine) as conn:
            return read_state(conn)
    except DBAPIError as exc:
        raise database_error(where, "schema", exc) from exc
    finally:
        engine.dispose()


def upgrade_schema(url: str) -> tuple[SchemaState, SchemaState]:
    """Upgrade the ledger at ``url`` to the head revision (``billcast db upgrade``); (before, after)."""
    parsed, where = parse_url(url)
    engine = new_engine(parsed, where)
    try:
        return upgrade(engine, where)
    finally:
        engine.dispose()
