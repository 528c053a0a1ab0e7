"""The ledger's contract, on SQLite and on a real PostgreSQL server (tests/pg.py): every test runs on both.

The schema and its revisions are tests/test_ledger_migrations.py's.
"""

from __future__ import annotations

import multiprocessing
import pickle
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from billcast.jobs.ledger import Ledger, LedgerError, Recipient, reads

from ledgers import columns, query

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
RECIPIENT_COLUMNS = {"campaign_id", "customer_id", "token", "storyboard", "variant", "status", "amount_due", "currency",
                     "content_hash", "published_at", "expires_at", "paid_at", "updated_at",
                     "plan_installments", "days_past_due", "plan_first_due", "locale"}


@pytest.fixture
def url(ledger_url: str) -> str:
    """An empty database: a SQLite file (its folder not made yet) or a PostgreSQL database of its own."""
    return ledger_url


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with Ledger(url) as opened:
        opened.ensure_campaign("c1", link_days=30, config_hash="cfg1")
        yield opened


def token() -> str:
    return secrets.token_urlsafe(16)


def publish(ledger: Ledger, customer_id: str, **overrides: object) -> str:
    values: dict[str, object] = {
        "campaign_id": "c1", "customer_id": customer_id, "token": token(), "storyboard": "bill_explainer",
        "variant": "", "amount_due": Decimal("42.00"), "currency": "EUR", "content_hash": f"hash-{customer_id}",
        "published_at": NOW, "expires_at": NOW + timedelta(days=30)}
    values.update(overrides)
    ledger.record_published(**values)  # type: ignore[arg-type]
    return str(values["token"])


def pay(ledger: Ledger, tok: str, status: str, **overrides: object) -> int:
    values: dict[str, object] = {
        "campaign_id": "c1", "token": tok, "provider": "stripe", "provider_ref": "cs_test_1", "amount": 4200,
        "currency": "EUR", "option": "full", "source": "site", "status": status}
    values.update(overrides)
    return ledger.upsert_payment(**values)  # type: ignore[arg-type]


# --- schema ----------------------------------------------------------------------------------


def test_recipients_table_holds_no_personal_data(url: str) -> None:
    with Ledger(url) as ledger:
        ledger.counts("c1")
    assert set(columns(url, "recipients")) == RECIPIENT_COLUMNS


def test_sqlite_file_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.ensure_campaign("c1", link_days=30)
        with pytest.raises(LedgerError, match="ensure_campaign first"):
            publish(ledger, "IT-1", campaign_id="nope")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_urls_other_databases_and_missing_drivers_are_ledger_errors(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="url"):
        Ledger("not a url")
    with pytest.raises(LedgerError, match="url: the ledger runs on SQLite or PostgreSQL .*; got mysql") as caught:
        Ledger("mysql+pymysql://billcast:secret@db/billcast")
    assert "secret" not in str(caught.value)
    with Ledger("postgresql+nosuchdriver://billcast@127.0.0.1/billcast") as ledger, \
            pytest.raises(LedgerError, match="driver"):
        ledger.counts("c1")


# --- recipients ---------------------------------------------------------------------------------


def test_record_published_twice_keeps_one_row_with_the_new_hash(ledger: Ledger, url: str) -> None:
    tok = publish(ledger, "IT-1", content_hash="first")
    publish(ledger, "IT-1", token=tok, content_hash="first")      # the same call again: nothing changes
    publish(ledger, "IT-1", token=tok, content_hash="second", amount_due=Decimal("50.00"))
    assert query(url, "SELECT count(*) FROM recipients") == [(1,)]
    found = ledger.recipient("c1", "IT-1")
    assert found is not None
    assert (found.token, found.content_hash, found.amount_due, found.status) == (tok, "second", Decimal("50.00"),
                                                                                 "published")


@pytest.mark.parametrize("amount", ["0.10", "1234567.89", "-12.50", "0", "100", "0.001", "-0.00"])
def test_amounts_round_trip_exactly(ledger: Ledger, amount: str) -> None:
    publish(ledger, "IT-1", amount_due=Decimal(amount))
    found = ledger.recipient("c1", "IT-1")
    assert found is not None and isinstance(found.amount_due, Decimal)
    assert str(found.amount_due) == amount


@pytest.mark.parametrize("bad", [0.1, 10, Decimal("NaN"), Decimal("Infinity"), "0.10"])
def test_amounts_must_be_finite_decimals(ledger: Ledger, bad: object) -> None:
    with pytest.raises(LedgerError, match="amount_due: must be a finite Decimal"):
        publish(ledger, "IT-1", amount_due=bad)
    assert ledger.recipient("c1", "IT-1") is None


def test_datetimes_round_trip_as_aware_utc(ledger: Ledger) -> None:
    rome = timezone(timedelta(hours=2))
    published = datetime(2025, 6, 30, 23, 30, 15, 654321, tzinfo=rome)
    publish(ledger, "IT-1", published_at=published, expires_at=published + timedelta(days=30))
    found = ledger.recipient("c1", "IT-1")
    assert found is not None and found.published_at is not None and found.expires_at is not None
    assert found.published_at == published
    assert found.published_at.utcoffset() == timedelta(0)
    assert (found.published_at.day, found.published_at.hour) == (30, 21)
    assert found.expires_at - found.published_at == timedelta(days=30)
    with pytest.raises(LedgerError, match="published_at: must be a timezone-aware datetime"):
        publish(ledger, "IT-2", published_at=datetime(2025, 1, 1))


def test_recipient_by_token(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    publish(ledger, "IT-2")
    found = ledger.recipient_by_token(tok)
    assert isinstance(found, Recipient) and found.customer_id == "IT-1"
    assert ledger.recipient_by_token(token()) is None
    assert ledger.recipient_by_token("../etc/passwd") is None


def test_plan_installments_and_days_past_due_are_kept_and_replaced(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1", plan_installments=6, days_past_due=45)
    found = ledger.recipient("c1", "IT-1")
    assert found is not None and (found.plan_installments, found.days_past_due) == (6, 45)
    assert ledger.recipient_by_token(tok) == found
    publish(ledger, "IT-1", token=tok)                 # the record no longer offers a plan, nor is in arrears
    found = ledger.recipient("c1", "IT-1")
    assert found is not None and (found.plan_installments, found.days_past_due) == (None, None)
    publish(ledger, "IT-1", token=tok, days_past_due=0)
    assert ledger.recipient("c1", "IT-1").days_past_due == 0  # type: ignore[union-attr]
    for field, bad, message in (("plan_installments", 0, "must be at least 1"),
                                ("plan_installments", 2.0, "must be an integer"),
                                ("plan_installments", True, "must be an integer"),
                                ("days_past_due", -1, "must be at least 0"),
                                ("days_past_due", "45", "must be an integer")):
        with pytest.raises(LedgerError, match=f"record_published: {field}: {message}"):
            publish(ledger, "IT-1", token=tok, **{field: bad})
    assert ledger.recipient("c1", "IT-1").days_past_due == 0  # type: ignore[union-attr]


def test_a_token_belongs_to_one_recipient(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    with pytest.raises(LedgerError, match="token: .* already belongs to another recipient") as caught:
        publish(ledger, "IT-2", token=tok)
    assert tok not in str(caught.value), "a token is a secret: messages show only its start"
    assert ledger.recipient("c1", "IT-2") is None
    with pytest.raises(LedgerError, match="token: must be 22 URL-safe characters"):
        publish(ledger, "IT-3", token="short")


def test_reserve_fixes_one_token_per_recipient(ledger: Ledger) -> None:
    first = ledger.reserve(campaign_id="c1", customer_id="IT-1", token=token(), storyboard="bill_explainer",
                           variant="b", amount_due=Decimal("9.90"), currency="EUR")
    second = ledger.reserve(campaign_id="c1", customer_id="IT-1", token=token(), storyboard="bill_explainer",
                            variant="b", amount_due=Decimal("9.90"), currency="EUR")
    assert first == second and first.status == "pending" and first.published_at is None
    publish(ledger, "IT-1", token=first.token)
    assert ledger.counts("c1") == {"pending": 0, "published": 1, "expired": 0}


def test_recipients_stream_in_customer_order_and_filter_by_status(ledger: Ledger,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "_PAGE", 2)    # several pages from five rows
    for customer_id in ["IT-5", "IT-3", "IT-1", "IT-4", "IT-2"]:
        publish(ledger, customer_id)
    ledger.ensure_campaign("c2", link_days=30)
    publish(ledger, "IT-0", campaign_id="c2")
    assert ledger.mark_expired("c1", ["IT-2", "IT-4"]) == 2
    assert [r.customer_id for r in ledger.recipients("c1")] == ["IT-1", "IT-2", "IT-3", "IT-4", "IT-5"]
    assert [r.customer_id for r in ledger.recipients("c1", status="expired")] == ["IT-2", "IT-4"]
    assert [r.customer_id for r in ledger.recipients("c1", status="published")] == ["IT-1", "IT-3", "IT-5"]
    with pytest.raises(LedgerError, match="status: must be one of pending, published, expired"):
        ledger.recipients("c1", status="paid")


def test_due_for_expiry_and_mark_expired(ledger: Ledger) -> None:
    publish(ledger, "IT-past", expires_at=NOW - timedelta(days=1))
    publish(ledger, "IT-now", expires_at=NOW)
    publish(ledger, "IT-later", expires_at=NOW + timedelta(seconds=1))
    due = ledger.due_for_expiry("c1", NOW)
    assert [r.customer_id for r in due] == ["IT-now", "IT-past"]
    assert ledger.mark_expired("c1", [r.customer_id for r in due]) == 2
    assert ledger.mark_expired("c1", ["IT-now", "IT-past", "IT-unknown"]) == 0
    assert ledger.due_for_expiry("c1", NOW) == []
    assert [r.customer_id for r in ledger.due_for_expiry("c1", NOW + timedelta(days=1))] == ["IT-later"]
    assert ledger.counts("c1") == {"pending": 0, "published": 1, "expired": 2}


def test_counts_by_status(ledger: Ledger) -> None:
    publish(ledger, "IT-1", content_hash="h1")
    publish(ledger, "IT-2", content_hash="h2")
    publish(ledger, "IT-3", content_hash=None)
    publish(ledger, "IT-4", content_hash="h4")
    ledger.mark_expired("c1", ["IT-4"])
    ledger.reserve(campaign_id="c1", customer_id="IT-5", token=token(), storyboard="s", variant="",
                   amount_due=Decimal("1"), currency="EUR")
    ledger.ensure_campaign("c2", link_days=30)
    publish(ledger, "IT-1", campaign_id="c2", content_hash="other")
    assert ledger.counts("c1") == {"pending": 1, "published": 3, "expired": 1}
    assert ledger.counts("none") == {"pending": 0, "published": 0, "expired": 0}


def test_ensure_campaign_inserts_then_updates(ledger: Ledger, url: str) -> None:
    ledger.ensure_campaign("c1", link_days=14, config_hash=None)
    assert query(url, "SELECT id, link_days, config_hash FROM campaigns") == [("c1", 14, None)]
    with pytest.raises(LedgerError, match="link_days: must be at least 1"):
        ledger.ensure_campaign("c1", link_days=0)


# --- payments and events ------------------------------------------------------------------------


def test_seen_webhook_records_each_event_once(ledger: Ledger, url: str) -> None:
    assert ledger.seen_webhook("evt_1", "checkout.session.completed") is False
    assert ledger.seen_webhook("evt_1", "checkout.session.completed") is True
    assert ledger.seen_webhook("evt_2", "checkout.session.expired") is False
    assert query(url, "SELECT event_id FROM webhook_events ORDER BY event_id") == [("evt_1",), ("evt_2",)]


def test_upsert_payment_is_idempotent_and_never_downgrades_paid(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    first = pay(ledger, tok, "pending")
    assert pay(ledger, tok, "pending") == first
    assert pay(ledger, tok, "paid", payment_intent="pi_1") == first
    for late in ("pending", "expired", "failed"):
        assert pay(ledger, tok, late, amount=1) == first
    rows = list(ledger.payments("c1"))
    assert len(rows) == 1
    assert {k: rows[0][k] for k in ("id", "status", "amount", "payment_intent", "flagged")} == {
        "id": first, "status": "paid", "amount": 4200, "payment_intent": "pi_1", "flagged": False}
    assert rows[0]["created_at"].tzinfo is not None and rows[0]["updated_at"] >= rows[0]["created_at"]


def test_upsert_payment_flags_stay_raised(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    pay(ledger, tok, "pending")
    pay(ledger, tok, "paid", amount=100, flag_reason="amount 100 EUR differs from the ledger's 4200")
    pay(ledger, tok, "paid", amount=100)
    [row] = ledger.payments("c1")
    assert (row["flagged"], row["flag_reason"], row["amount"]) == (
        True, "amount 100 EUR differs from the ledger's 4200", 100)


def test_upsert_payment_refuses_bad_values_and_another_recipient(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    pay(ledger, tok, "pending")
    with pytest.raises(LedgerError, match="upsert_payment: token: payment 1 was recorded with another token"):
        pay(ledger, publish(ledger, "IT-2"), "paid")
    with pytest.raises(LedgerError, match="status: must be one of pending, paid, failed, expired"):
        pay(ledger, tok, "refunded")
    with pytest.raises(LedgerError, match="amount: must be an integer; got float"):
        pay(ledger, tok, "paid", amount=42.0)
    with pytest.raises(LedgerError, match="ensure_campaign first"):
        pay(ledger, tok, "pending", campaign_id="nope", provider_ref="cs_test_2")


def test_payment_lookups_by_session_and_by_token(ledger: Ledger) -> None:
    tok, other = publish(ledger, "IT-1"), publish(ledger, "IT-2")
    expires = NOW + timedelta(hours=1)
    first = pay(ledger, tok, "pending", expires_at=expires, idempotency_key="billcast-abc")
    pay(ledger, other, "pending", provider_ref="cs_test_other")
    second = pay(ledger, tok, "pending", provider_ref="cs_test_2", option="plan", amount=1400, source="other")
    assert pay(ledger, tok, "paid", payment_intent="pi_1") == first   # news without them keeps them
    found = ledger.payment("cs_test_1")
    assert found is not None
    assert {k: found[k] for k in ("id", "token", "status", "expires_at", "idempotency_key", "payment_intent")} == {
        "id": first, "token": tok, "status": "paid", "expires_at": expires, "idempotency_key": "billcast-abc",
        "payment_intent": "pi_1"}
    assert ledger.payment("cs_test_none") is None and ledger.payment("") is None
    assert [(p["id"], p["option"], p["source"]) for p in ledger.payments_for_token(tok)] == [
        (first, "full", "site"), (second, "plan", "other")]
    assert ledger.payments_for_token(token()) == [] and ledger.payments_for_token("not a token") == []
    with pytest.raises(LedgerError, match="upsert_payment: expires_at: must be a timezone-aware datetime"):
        pay(ledger, tok, "pending", expires_at=datetime(2025, 3, 1))


def test_forget_webhook_lets_a_failed_event_be_handled_again(ledger: Ledger) -> None:
    assert ledger.seen_webhook("evt_1", "checkout.session.completed") is False
    ledger.forget_webhook("evt_1")
    ledger.forget_webhook("evt_never_seen")
    assert ledger.seen_webhook("evt_1", "checkout.session.completed") is False
    assert ledger.seen_webhook("evt_1", "checkout.session.completed") is True


def test_mark_paid_keeps_the_first_time(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    ledger.mark_paid(tok, NOW + timedelta(hours=2))
    ledger.mark_paid(tok, NOW + timedelta(hours=1))
    ledger.mark_paid(tok, NOW + timedelta(hours=3))
    found = ledger.recipient("c1", "IT-1")
    assert found is not None and found.paid_at == NOW + timedelta(hours=1) and found.status == "published"
    with pytest.raises(LedgerError, match="mark_paid: token: no recipient has the token"):
        ledger.mark_paid(token(), NOW)


def test_events_are_recorded_and_listed_per_campaign(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    ledger.ensure_campaign("c2", link_days=30)
    ledger.add_event(campaign_id="c1", token=tok, kind="view", value=None, at=NOW)
    for value in (25, 50, 75, 100):
        ledger.add_event(campaign_id="c1", token=tok, kind="progress", value=value, at=NOW + timedelta(seconds=value))
    ledger.add_event(campaign_id="c2", token=tok, kind="pay_click", value=None, at=NOW)
    rows = list(ledger.events("c1"))
    assert [(r["kind"], r["value"]) for r in rows] == [
        ("view", None), ("progress", 25), ("progress", 50), ("progress", 75), ("progress", 100)]
    assert rows[-1]["at"] == NOW + timedelta(seconds=100) and rows[-1]["token"] == tok
    with pytest.raises(LedgerError, match="kind: must be one of view, play, progress, cta_click, pay_click"):
        ledger.add_event(campaign_id="c1", token=tok, kind="hover", value=None, at=NOW)


# --- processes ----------------------------------------------------------------------------------


def _race(url: str, start, customers: list[str]) -> None:
    """One of two workers publishing the same recipients at once, each with its own tokens."""
    with Ledger(url) as ledger:
        start.wait(timeout=30)
        ledger.ensure_campaign("race", link_days=30)
        for customer_id in customers:
            publish(ledger, customer_id, campaign_id="race")
            publish(ledger, customer_id, campaign_id="race", content_hash="again")


def test_two_processes_publishing_the_same_recipients_leave_one_row_each(url: str) -> None:
    customers = [f"IT-{n:03d}" for n in range(40)]
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    workers = [spawn.Process(target=_race, args=(url, start, customers)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert query(url, "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT token) FROM recipients") == [
        (40, 40, 40)]
    assert query(url, "SELECT DISTINCT status, content_hash FROM recipients") == [("published", "again")]


def _pay_once(url: str, tok: str, start, results) -> None:
    """One of several processes handling the same provider event at once."""
    with Ledger(url) as ledger:
        start.wait(timeout=60)
        first = not ledger.seen_webhook("evt_race", "checkout.session.completed")
        payment = pay(ledger, tok, "paid" if first else "pending", provider_ref="cs_race")
        ledger.mark_paid(tok, NOW)
        results.put((first, payment))


def test_processes_racing_on_one_event_and_one_session_leave_one_of_each(ledger: Ledger, url: str) -> None:
    tok = publish(ledger, "IT-1")
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(4), spawn.Queue()
    workers = [spawn.Process(target=_pay_once, args=(url, tok, start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert sorted(first for first, _ in answers) == [False, False, False, True]   # one handles it
    assert len({payment for _, payment in answers}) == 1                          # one payment row
    assert query(url, "SELECT count(*) FROM webhook_events") == [(1,)]
    [row] = ledger.payments("c1")
    assert row["status"] == "paid"                            # news of pending does not undo paid
    assert ledger.recipient("c1", "IT-1").paid_at is not None  # type: ignore[union-attr]


def _hold_the_campaign_lock(url: str, held, release) -> None:
    with Ledger(url) as ledger, ledger.campaign_lock("c1"):
        held.set()
        release.wait(timeout=60)


def test_runs_of_a_campaign_take_turns_and_a_dead_holder_lets_go(url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    for ending in ("released", "killed"):
        held, release = spawn.Event(), spawn.Event()
        holder = spawn.Process(target=_hold_the_campaign_lock, args=(url, held, release))
        holder.start()
        assert held.wait(timeout=60)
        waited: list[str] = []

        def waiting() -> None:
            waited.append(ending)
            if ending == "released":
                release.set()
            else:
                holder.kill()

        with Ledger(url) as ledger:
            with ledger.campaign_lock("c2"):       # another campaign's runs do not wait
                pass
            with ledger.campaign_lock("c1", waiting=waiting):
                assert waited == [ending]
        holder.join(timeout=30)
        assert holder.exitcode == (0 if ending == "released" else -9)


def test_a_transaction_postgresql_asks_to_try_again_is_run_again(postgres) -> None:
    """A deadlock or serialization failure (SQLSTATE 40P01, 40001) rolls back and runs the call again, a few times."""
    refuse = ("DO $$ BEGIN RAISE EXCEPTION 'pretend conflict' USING ERRCODE = '{}'; END $$")
    with postgres.database() as url, Ledger(url) as ledger:
        ledger.ensure_campaign("c1", link_days=30)
        tries: list[int] = []

        def work(conn) -> str:
            tries.append(1)
            conn.exec_driver_sql("UPDATE campaigns SET link_days = link_days + 1")
            if len(tries) < 3:
                conn.exec_driver_sql(refuse.format("serialization_failure" if len(tries) == 1 else "deadlock_detected"))
            return "done"

        assert ledger._write("work", work) == "done" and len(tries) == 3
        assert query(url, "SELECT link_days FROM campaigns") == [(31,)]   # the failed tries left nothing
        with pytest.raises(LedgerError, match="work: SerializationFailure: pretend conflict"):
            ledger._write("work", lambda conn: conn.exec_driver_sql(refuse.format("serialization_failure")))
        with pytest.raises(LedgerError, match="work: RaiseException: pretend conflict"):   # others are not retried
            ledger._write("work", lambda conn: conn.exec_driver_sql(refuse.format("raise_exception")))


def _publish_in_child(ledger: Ledger) -> None:
    publish(ledger, "IT-child")


def test_a_ledger_survives_fork_and_pickling(ledger: Ledger) -> None:
    publish(ledger, "IT-parent")                       # the parent's engine is open before the fork
    child = multiprocessing.get_context("fork").Process(target=_publish_in_child, args=(ledger,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    publish(ledger, "IT-after")                        # the parent's connections still work
    copy = pickle.loads(pickle.dumps(ledger))
    assert copy.url == ledger.url
    with copy:
        assert [r.customer_id for r in copy.recipients("c1")] == ["IT-after", "IT-child", "IT-parent"]
