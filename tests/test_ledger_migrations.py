"""The ledger's schema and its Alembic revisions, on SQLite and on a real PostgreSQL server.

Opening creates an empty database's schema on both; a SQLite ledger that is
behind is upgraded in place, a PostgreSQL one is refused until `billcast db
upgrade`; a database at a revision this code does not know is refused on both.
Ledgers from before Alembic (schema_version 1 or 2) are taken over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from billcast.jobs.ledger import Ledger, LedgerError, head_revision, migrate, schema, schema_state, upgrade_schema
from billcast.jobs.ledger.engine import new_engine, parse_url
from billcast.renderer import BillcastError

from conftest import ROOT
from ledgers import HEAD, columns, execute, make_legacy, query, table_names
from test_ledger import RECIPIENT_COLUMNS, publish, token

TABLES = {"alembic_version", "campaigns", "recipients", "payments", "webhook_events", "events", "allocations",
          "experiment_shares", "experiment_outcomes", "suppressions", "disputes", "withheld", "plans", "installments",
          "signin_attempts", "admin_sessions"}
ALEMBIC = Path(sys.executable).with_name("alembic")


@pytest.fixture
def url(ledger_url: str) -> str:
    return ledger_url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def open_or_upgrade(url: str) -> None:
    """What brings a ledger that is behind to head: opening it on SQLite, `billcast db upgrade` on PostgreSQL."""
    if is_sqlite(url):
        with Ledger(url) as ledger:
            ledger.open()
        return
    with Ledger(url) as ledger, pytest.raises(LedgerError, match="run `billcast db upgrade` for this ledger first"):
        ledger.open()
    upgrade_schema(url)


def at_revision(url: str, revision: str) -> None:
    """Make the empty database at ``url`` a ledger as Billcast left it at ``revision`` (Alembic's upgrade to it)."""
    engine = new_engine(*parse_url(url))
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def future(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *revisions: tuple[str, str]) -> None:
    """This code's revisions and some of a pretend future (id, upgrade body) in a folder of their own."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = HEAD
    for revision, body in revisions:
        (folder / "versions" / f"{revision}_future.py").write_text(
            f'"""A pretend revision."""\nimport sqlalchemy as sa\nfrom alembic import op\n\nrevision = "{revision}"\n'
            f'down_revision = "{before}"\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n'
            f'    {body}\n', encoding="utf-8")
        before = revision
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)


def test_an_empty_database_gets_the_schema_on_first_use(url: str, tmp_path: Path) -> None:
    with Ledger(url) as ledger:
        if is_sqlite(url):
            assert not (tmp_path / "var").exists(), "making a ledger must not touch the disk"
        assert ledger.counts("c1") == {"pending": 0, "published": 0, "expired": 0}
        assert ledger.schema_revision() == head_revision() == HEAD
    assert table_names(url) == TABLES
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert schema_state(url).at_head


def test_the_schema_at_head_is_the_schema_the_code_queries(url: str) -> None:
    """Alembic's own comparison of the revisions' result with schema.py: columns, types, keys, indexes."""
    with Ledger(url) as ledger:
        ledger.open()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                           schema.metadata)
    finally:
        engine.dispose()
    assert differences == []
    assert set(columns(url, "recipients")) == RECIPIENT_COLUMNS


def test_reopening_keeps_rows_and_revision(url: str) -> None:
    with Ledger(url) as first:
        first.ensure_campaign("c1", link_days=30)
        tok = publish(first, "IT-1")
    with Ledger(url) as again:
        assert again.schema_revision() == HEAD
        found = again.recipient("c1", "IT-1")
        assert found is not None and found.token == tok
    assert query(url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_a_database_from_a_newer_billcast_is_refused(url: str) -> None:
    with Ledger(url) as ledger:
        ledger.ensure_campaign("c1", link_days=30)
    execute(url, "UPDATE alembic_version SET version_num = '0009'")
    with Ledger(url) as newer, pytest.raises(LedgerError) as caught:
        newer.counts("c1")
    assert isinstance(caught.value, BillcastError) and caught.value.exit_code == 8
    assert (f"schema: the database is at revision 0009, which this Billcast does not know (its newest is {HEAD}); "
            "upgrade Billcast" in str(caught.value))
    with pytest.raises(LedgerError, match="revision 0009, which this Billcast does not know"):
        upgrade_schema(url)
    assert query(url, "SELECT version_num FROM alembic_version") == [("0009",)]
    assert not schema_state(url).known


def test_revisions_apply_in_order_on_new_and_old_databases(url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(url) as old:
        old.ensure_campaign("c1", link_days=30)     # a database at today's head with a row in it
    future(tmp_path, monkeypatch, ("9001", 'op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))'),
           ("9002", 'op.add_column("notes", sa.Column("body", sa.String(100)))'))
    state = schema_state(url)
    assert (state.revision, state.head, state.known, state.at_head) == (HEAD, "9002", True, False)
    open_or_upgrade(url)
    with Ledger(url) as upgraded:
        assert upgraded.schema_revision() == "9002"
        upgraded.ensure_campaign("c1", link_days=7)
    assert columns(url, "notes") == ["id", "body"]
    assert query(url, "SELECT version_num FROM alembic_version") == [("9002",)]
    assert query(url, "SELECT link_days FROM campaigns") == [(7,)]
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    with Ledger(fresh) as new:
        assert new.schema_revision() == "9002"
    assert "notes" in table_names(fresh)


def test_a_failing_revision_leaves_the_database_as_it_was(url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(url) as old:
        old.ensure_campaign("c1", link_days=30)
    future(tmp_path, monkeypatch, ("9001", 'op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True)); '
                                           'op.execute("SELECT no_such_column FROM notes")'))
    with pytest.raises(LedgerError, match="schema"):
        if is_sqlite(url):
            Ledger(url).counts("c1")
        else:
            upgrade_schema(url)
    assert "notes" not in table_names(url)
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_a_postgresql_ledger_that_is_behind_is_refused_until_upgraded(postgres, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with postgres.database() as url:
        with Ledger(url) as ledger:
            ledger.ensure_campaign("c1", link_days=30)
        future(tmp_path, monkeypatch, ("9001", 'op.create_table("notes", sa.Column("id", sa.Integer))'))
        for _ in range(2):   # every process that opens it is told, none upgrades it
            with Ledger(url) as behind, pytest.raises(LedgerError) as caught:
                behind.counts("c1")
            assert caught.value.exit_code == 8
            assert str(caught.value) == (
                f"{url.split('://')[0]}://billcast:***@{url.split('@')[1]}: schema: the database is at revision "
                f"{HEAD}, this Billcast needs 9001; run `billcast db upgrade` for this ledger first")
        assert "notes" not in table_names(url)
        before, after = upgrade_schema(url)
        assert (before.revision, after.revision, after.at_head) == (HEAD, "9001", True)
        assert upgrade_schema(url)[0].at_head    # a second upgrade has nothing to do
        with Ledger(url) as ledger:
            assert ledger.counts("c1")["published"] == 0


@pytest.mark.parametrize("revision", ["0001", "0002", "0003"])
def test_a_ledger_at_each_earlier_revision_is_brought_to_head_keeping_its_rows(url: str, revision: str) -> None:
    engine = new_engine(*parse_url(url))
    try:
        with engine.begin() as conn:              # the ledger as that revision left it, one campaign in it
            config = Config()
            config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.execute(text("INSERT INTO campaigns (id, created_at, updated_at, link_days) VALUES "
                              "('c1', '2025-03-01 12:00:00', '2025-03-01 12:00:00', 30)"))
    finally:
        engine.dispose()
    state = schema_state(url)
    assert (state.revision, state.known, state.legacy, state.at_head) == (revision, True, False, False)
    open_or_upgrade(url)
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert table_names(url) == TABLES
    with Ledger(url) as ledger:
        assert publish(ledger, "IT-1") and ledger.counts("c1")["published"] == 1


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_ledger_from_before_alembic_is_taken_over_keeping_its_rows(url: str, version: int) -> None:
    make_legacy(url, version)
    tok = token()
    execute(url, "INSERT INTO campaigns (id, created_at, updated_at, link_days, config_hash) VALUES "
                 "('c1', '2025-03-01 12:00:00', '2025-03-01 12:00:00', 30, 'cfg')")
    execute(url, "INSERT INTO recipients (campaign_id, customer_id, token, storyboard, variant, status, amount_due, "
                 "currency, content_hash, published_at, expires_at, paid_at, updated_at) VALUES ('c1', 'IT-1', "
                 f"'{tok}', 'firm_reminder', 'a', 'published', '185.15', 'EUR', 'h1', '2025-03-01 12:00:00', "
                 "'2025-03-31 12:00:00', NULL, '2025-03-01 12:00:00')")
    execute(url, "INSERT INTO payments (campaign_id, token, provider, provider_ref, payment_intent, amount, currency, "
                 "option, source, status, flagged, flag_reason, created_at, updated_at) VALUES ('c1', "
                 f"'{tok}', 'stripe', 'cs_test_old', NULL, 18515, 'EUR', 'full', 'qr', 'pending', false, NULL, "
                 "'2025-03-01 12:00:00', '2025-03-01 12:00:00')")
    execute(url, "INSERT INTO webhook_events (event_id, type, received_at) VALUES "
                 "('evt_old', 'checkout.session.expired', '2025-03-01 12:00:00')")
    state = schema_state(url)
    assert (state.revision, state.legacy, state.at_head) == (f"000{version}", True, False)
    if version == 1:
        assert set(columns(url, "recipients")) == RECIPIENT_COLUMNS - {"plan_installments", "days_past_due", "plan_first_due",
                                                                   "locale"}

    open_or_upgrade(url)
    assert table_names(url) == TABLES         # schema_version is gone, alembic_version says where it stands
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    with Ledger(url) as upgraded:
        found = upgraded.recipient_by_token(tok)
        assert found is not None
        assert (found.customer_id, found.amount_due, found.status, found.content_hash) == (
            "IT-1", Decimal("185.15"), "published", "h1")
        assert (found.plan_installments, found.days_past_due) == (None, None)
        assert found.published_at == datetime(2025, 3, 1, 12, tzinfo=UTC)
        old_payment = upgraded.payment("cs_test_old")
        assert old_payment is not None and (old_payment["amount"], old_payment["source"]) == (18515, "qr")
        assert (old_payment["expires_at"], old_payment["idempotency_key"]) == (None, None)
        assert upgraded.seen_webhook("evt_old", "checkout.session.expired") is True
        publish(upgraded, "IT-1", token=tok, plan_installments=3, days_past_due=45)   # the new columns take values
        publish(upgraded, "IT-2")
        again = upgraded.recipient_by_token(tok)
        assert again is not None and (again.plan_installments, again.days_past_due) == (3, 45)
    assert set(columns(url, "recipients")) == RECIPIENT_COLUMNS
    assert query(url, "SELECT count(*) FROM recipients") == [(2,)]


def test_a_ledger_from_before_alembic_at_an_unknown_version_is_refused(url: str) -> None:
    make_legacy(url, 3)
    execute(url, "UPDATE schema_version SET version = 5")
    with Ledger(url) as ledger, pytest.raises(LedgerError, match="revision schema_version 5, which this Billcast "
                                                                 "does not know"):
        ledger.open()
    assert "schema_version" in table_names(url)


def test_billcast_db_current_reads_without_making_anything(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "ledger.db"
    state = schema_state(f"sqlite:///{missing}")
    assert (state.revision, state.empty, state.at_head) == (None, True, False)
    assert not missing.parent.exists()


def test_the_developers_alembic_command_works_on_the_shipped_revisions(url: str, tmp_path: Path) -> None:
    """docs/LEDGER.md's workflow: `alembic -c .../alembic.ini` downgrades, upgrades and writes a new revision."""
    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "jobs" / "ledger" / "migrations", folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "BILLCAST_LEDGER_URL": url}

    def alembic(*args: str) -> str:
        done = subprocess.run([str(ALEMBIC), "-c", str(folder / "alembic.ini"), *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    alembic("downgrade", "base")
    assert table_names(url) == {"alembic_version"}
    alembic("upgrade", "head")
    alembic("revision", "--autogenerate", "--rev-id", "9001", "-m", "nothing changed")
    written = folder / "versions" / "9001_nothing_changed.py"
    source = written.read_text(encoding="utf-8")
    assert "revision = '9001'" in source and f"down_revision = '{HEAD}'" in source
    assert "op." not in source.split("def upgrade")[1]
    with Ledger(url) as ledger:
        ledger.open()
        assert ledger.schema_revision() == HEAD   # the copy's new revision is not this code's


def test_payments_sharing_an_idempotency_key_are_all_kept_through_0005(url: str) -> None:
    """Simultaneous clicks on an older Billcast could record several sessions with one key: the upgrade keeps
    every row, leaves the key on the first (the one the pay link reused) and marks the others', so the key's
    unique index can be made."""
    at_revision(url, "0004")
    execute(url, "INSERT INTO campaigns (id, created_at, updated_at, link_days) VALUES "
                 "('c1', '2025-03-01 12:00:00', '2025-03-01 12:00:00', 30)")
    for ref, key, status in (("cs_demo_a", "'billcast-k1'", "pending"), ("cs_demo_b", "'billcast-k1'", "paid"),
                             ("cs_demo_c", "'billcast-k1'", "pending"), ("cs_demo_d", "'billcast-k2'", "pending"),
                             ("cs_demo_e", "NULL", "pending"), ("cs_demo_f", "NULL", "pending")):
        execute(url, "INSERT INTO payments (campaign_id, token, provider, provider_ref, amount, currency, option, "
                     "source, status, flagged, created_at, updated_at, idempotency_key) VALUES ('c1', "
                     f"'{'t' * 22}', 'demo', '{ref}', 100, 'EUR', 'full', 'qr', '{status}', false, "
                     f"'2025-03-01 12:00:00', '2025-03-01 12:00:00', {key})")
    open_or_upgrade(url)
    rows = query(url, "SELECT id, provider_ref, status, idempotency_key FROM payments ORDER BY id")
    ids = {ref: row_id for row_id, ref, _status, _key in rows}
    assert [(ref, status, key) for _id, ref, status, key in rows] == [
        ("cs_demo_a", "pending", "billcast-k1"), ("cs_demo_b", "paid", f"billcast-k1~{ids['cs_demo_b']}"),
        ("cs_demo_c", "pending", f"billcast-k1~{ids['cs_demo_c']}"), ("cs_demo_d", "pending", "billcast-k2"),
        ("cs_demo_e", "pending", None), ("cs_demo_f", "pending", None)]
    with Ledger(url) as ledger:   # the key is unique from now on: a new click with it gets the first session
        assert ledger.open_checkout(campaign_id="c1", token="t" * 22, provider="demo", provider_ref="cs_demo_new",
                                    amount=100, currency="EUR", option="full", source="qr",
                                    expires_at=datetime.now(UTC), idempotency_key="billcast-k1") == "cs_demo_a"
        assert ledger.payment("cs_demo_new") is None
