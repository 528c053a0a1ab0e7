"""Guessing the admin token: every try is counted per client in the ledger, and past the limit refused unseen.

Each test runs on a SQLite ledger and a PostgreSQL one (``ledger_url``); two app
instances on one ledger stand for two gunicorn workers or two hosts.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billcast.jobs.ledger import Ledger, SigninLimits

from ledgers import query
from signin_apps import ADDRESS, ADMIN, reports, sign_in, signin_app

LIMIT = 4


@pytest.fixture
def app(ledger_url: str):
    app = signin_app(ledger_url, signin_failures=LIMIT, signin_window_minutes=15)
    yield app
    app.extensions["billcast"].close()


def test_past_the_limit_even_the_right_token_is_refused_with_when_to_come_back(app) -> None:
    client = app.test_client()
    for _ in range(LIMIT):
        answer = sign_in(client, "wrong-token")
        assert answer.status_code == 401 and "That token is not right." in answer.get_data(as_text=True)
    refused = sign_in(client, ADMIN)  # the right one: not even looked at
    assert refused.status_code == 429
    assert 14 * 60 < int(refused.headers["Retry-After"]) <= 15 * 60
    page = refused.get_data(as_text=True)
    assert "Too many sign-in attempts. Try again in 15 minutes (after " in page and " UTC)." in page
    assert "Set-Cookie" not in refused.headers
    assert reports(client, Authorization=f"Bearer {ADMIN}") == 429   # the bearer header is the same door
    assert sign_in(client, ADMIN, address="198.51.100.20").status_code == 303   # another client is not held


def test_the_form_says_so_before_a_locked_out_client_types_anything(app) -> None:
    client = app.test_client()
    first = client.get("/signin", environ_base={"REMOTE_ADDR": ADDRESS})
    assert first.status_code == 200 and "Too many" not in first.get_data(as_text=True)
    for _ in range(LIMIT):
        assert sign_in(client, "wrong-token").status_code == 401
    locked = client.get("/signin?next=/studio/", environ_base={"REMOTE_ADDR": ADDRESS})
    assert locked.status_code == 429 and 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    page = locked.get_data(as_text=True)
    assert "Too many sign-in attempts. Try again in 15 minutes (after " in page and 'value="/studio/"' in page
    other = client.get("/signin", environ_base={"REMOTE_ADDR": "198.51.100.20"})
    assert other.status_code == 200 and "Too many" not in other.get_data(as_text=True)
    assert sign_in(client, "wrong-token").status_code == 429  # looking counted nothing, and let nothing through


def test_a_success_takes_back_the_client_s_failures(app) -> None:
    client = app.test_client()
    for _ in range(LIMIT - 1):
        assert sign_in(client, "wrong-token").status_code == 401
    assert sign_in(client, ADMIN).status_code == 303
    for _ in range(LIMIT):
        assert sign_in(client, "wrong-token").status_code == 401
    assert sign_in(client, "wrong-token").status_code == 429


def test_wrong_bearer_tokens_count_like_the_form(app) -> None:
    client = app.test_client()
    for _ in range(LIMIT):
        assert reports(client, Authorization="Bearer wrong") == 401
    answer = client.get("/reports/", headers={"Authorization": f"Bearer {ADMIN}"}, environ_base={"REMOTE_ADDR": ADDRESS})
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 60
    assert "Too many sign-in attempts; try again in 15 minutes" in answer.get_data(as_text=True)
    assert sign_in(client, ADMIN).status_code == 429


def test_a_right_bearer_token_writes_nothing_and_still_takes_back_failures(app, ledger_url: str,
                                                                           monkeypatch) -> None:
    """The studio and reports send the bearer header with every request: a right one is a read, not a write
    (the ledger's one writer is the public side's too); failures before it are still taken back."""
    client = app.test_client()
    writes: list[str] = []
    real = Ledger._write
    monkeypatch.setattr(Ledger, "_write", lambda self, call, work: writes.append(call) or real(self, call, work))
    for _ in range(3):
        assert reports(client, Authorization=f"Bearer {ADMIN}") == 200
    assert writes == []
    for _ in range(LIMIT - 1):
        assert reports(client, Authorization="Bearer wrong") == 401
    assert writes == ["signin_attempt"] * (LIMIT - 1)
    assert reports(client, Authorization=f"Bearer {ADMIN}") == 200
    assert writes[-1] == "signin_succeeded" and query(ledger_url, "SELECT client FROM signin_attempts") == []
    for _ in range(LIMIT):  # the count starts again from nothing
        assert reports(client, Authorization="Bearer wrong") == 401
    assert reports(client, Authorization=f"Bearer {ADMIN}") == 429


def test_the_count_holds_across_workers_sharing_the_ledger(ledger_url: str) -> None:
    one, two = (signin_app(ledger_url, signin_failures=LIMIT) for _ in range(2))
    try:
        clients = one.test_client(), two.test_client()
        for i in range(LIMIT):
            assert sign_in(clients[i % 2], "wrong-token").status_code == 401
        assert sign_in(clients[0], ADMIN).status_code == 429
        assert sign_in(clients[1], ADMIN).status_code == 429
    finally:
        for app in (one, two):
            app.extensions["billcast"].close()


def test_simultaneous_guesses_never_pass_the_limit(app) -> None:
    statuses: list[int] = []
    start = threading.Barrier(12)

    def guess() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(sign_in(client, "wrong-token").status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * LIMIT + [429] * (12 - LIMIT)


def test_a_ceiling_over_every_client_stops_guesses_from_many_addresses(ledger_url: str) -> None:
    app = signin_app(ledger_url, signin_failures=LIMIT, signin_failures_all=6)
    try:
        client = app.test_client()
        for i in range(6):
            assert sign_in(client, "wrong-token", address=f"198.51.100.{i + 1}").status_code == 401
        refused = sign_in(client, ADMIN, address="198.51.100.99")
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    finally:
        app.extensions["billcast"].close()


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(ledger_url: str) -> None:
    proxied = signin_app(ledger_url, signin_failures=LIMIT, trusted_proxies=1)
    try:
        client = proxied.test_client()
        for _ in range(LIMIT):
            assert sign_in(client, "wrong-token", X_Forwarded_For="192.0.2.1").status_code == 401
        assert sign_in(client, ADMIN, X_Forwarded_For="192.0.2.1").status_code == 429
        assert sign_in(client, ADMIN, X_Forwarded_For="192.0.2.2").status_code == 303  # same proxy, other client
    finally:
        proxied.extensions["billcast"].close()


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(app) -> None:
    client = app.test_client()
    for i in range(LIMIT):
        assert sign_in(client, "wrong-token", X_Forwarded_For=f"192.0.2.{i}").status_code == 401
    assert sign_in(client, ADMIN, X_Forwarded_For="192.0.2.200").status_code == 429


def test_an_ipv6_client_is_its_64_block(app) -> None:
    client = app.test_client()
    for i in range(LIMIT):
        assert sign_in(client, "wrong-token", address=f"2001:db8:1:2::{i + 1:x}").status_code == 401
    assert sign_in(client, ADMIN, address="2001:db8:1:2:ffff::1").status_code == 429
    assert sign_in(client, ADMIN, address="2001:db8:1:3::1").status_code == 303


def test_the_ledger_keeps_no_address_and_old_attempts_go(app, ledger_url: str, tmp_path: Path) -> None:
    client = app.test_client()
    for _ in range(2):
        assert sign_in(client, "wrong-token").status_code == 401
    rows = query(ledger_url, "SELECT client FROM signin_attempts")
    assert len(rows) == 2 and all(len(client_key) == 32 and ADDRESS not in client_key for (client_key,) in rows)
    if ledger_url.startswith("sqlite:///"):
        database = Path(ledger_url.removeprefix("sqlite:///"))
        for path in (database, database.with_name(database.name + "-wal")):
            assert not path.exists() or ADDRESS.encode() not in path.read_bytes()
    limits = SigninLimits(per_client=LIMIT, window=timedelta(minutes=15), all_clients=60)
    with Ledger(ledger_url) as ledger:  # an hour on: the next attempt sweeps the old ones away
        assert ledger.signin_attempt("f" * 32, datetime.now(UTC) + timedelta(hours=1), limits) is None
    assert query(ledger_url, "SELECT client FROM signin_attempts") == [("f" * 32,)]


def test_a_ledger_out_of_reach_shows_the_form_and_refuses_every_way_in_for_now(caplog) -> None:
    """Where attempts are counted cannot be reached (a refused connection): the page still opens (it cannot
    say whether the client is locked out), and the form and a bearer token each get 503 with Retry-After,
    never a way in; the log names the ledger without its password."""
    app = signin_app("postgresql+psycopg://billcast:not-logged-pw@127.0.0.1:1/billcast")
    client = app.test_client()
    page = client.get("/signin", environ_base={"REMOTE_ADDR": ADDRESS})
    assert page.status_code == 200 and 'name="token"' in page.get_data(as_text=True)
    for answer in (sign_in(client), client.get("/reports/", headers={"Authorization": f"Bearer {ADMIN}"},
                                               environ_base={"REMOTE_ADDR": ADDRESS})):
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        assert "Signing in is not available now" in answer.get_data(as_text=True)
    assert reports(client) == 401  # no token, no cookie: nothing to look up
    assert "not-logged-pw" not in caplog.text and "ledger is not available" in caplog.text
