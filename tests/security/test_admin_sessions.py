"""Admin sessions live in the ledger: a copied cookie dies with sign-out, a new token, its age or its idleness.

Each test runs on a SQLite ledger and a PostgreSQL one; two app instances on one
ledger stand for two gunicorn workers or two hosts.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, update

from billcast.jobs.ledger import AdminSession, Ledger
from billcast.jobs.ledger.schema import admin_session_table

from ledgers import query
from signin_apps import ADMIN, reports, sign_in, signin_app


@pytest.fixture
def apps(ledger_url: str):
    """Two workers on one ledger."""
    made = [signin_app(ledger_url) for _ in range(2)]
    yield made
    for app in made:
        app.extensions["billcast"].close()


def signed_in(client: FlaskClient) -> str:
    """Sign in; the session cookie's value."""
    assert sign_in(client).status_code == 303
    cookie = client.get_cookie("billcast_admin")
    assert cookie is not None
    return cookie.value


def holding(app, cookie: str) -> FlaskClient:
    """Another browser, with a copy of the cookie."""
    client = app.test_client()
    client.set_cookie("billcast_admin", cookie)
    return client


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(apps, ledger_url: str) -> None:
    one, two = apps
    browser = one.test_client()
    cookie = signed_in(browser)
    copy = holding(two, cookie)
    assert reports(browser) == 200 and reports(copy) == 200   # the other worker knows the session too
    assert browser.post("/signout").status_code == 303
    assert reports(browser) == 401
    assert reports(copy) == 401
    assert copy.get("/reports/", headers={"Accept": "text/html"}).status_code == 302
    assert query(ledger_url, "SELECT count(*) FROM admin_sessions WHERE revoked_at IS NOT NULL") == [(1,)]


def test_signing_out_one_session_leaves_the_others(apps) -> None:
    one, two = apps
    first, second = one.test_client(), two.test_client()
    signed_in(first)
    signed_in(second)
    assert first.post("/signout").status_code == 303
    assert reports(first) == 401 and reports(second) == 200


def test_a_new_admin_token_closes_every_session(apps, ledger_url: str) -> None:
    cookie = signed_in(apps[0].test_client())
    rotated = signin_app(ledger_url, admin_token="a-new-admin-token-9876543210fedcba")
    try:
        assert reports(holding(rotated, cookie)) == 401
        assert reports(holding(apps[1], cookie)) == 200   # a worker still on the old token: still open there
    finally:
        rotated.extensions["billcast"].close()


def set_times(url: str, **times: datetime) -> None:
    """Move every session's times, as the ledger writes them."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(update(admin_session_table).values(**times))
    finally:
        engine.dispose()


def the_session(url: str) -> AdminSession:
    with Ledger(url) as ledger:
        (session_id,) = query(url, "SELECT id FROM admin_sessions")[0]
        found = ledger.admin_session(session_id)
    assert found is not None
    return found


def test_a_session_ends_when_idle(apps, ledger_url: str) -> None:
    one, two = apps
    cookie = signed_in(one.test_client())
    set_times(ledger_url, last_seen_at=datetime.now(UTC) - timedelta(minutes=59))
    assert reports(holding(two, cookie)) == 200                 # used within the hour: open, and seen now
    set_times(ledger_url, last_seen_at=datetime.now(UTC) - timedelta(minutes=61))
    assert reports(holding(two, cookie)) == 401


def test_a_session_ends_at_its_age_however_busy(apps, ledger_url: str) -> None:
    one, two = apps
    cookie = signed_in(one.test_client())
    set_times(ledger_url, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert reports(holding(two, cookie)) == 401
    assert the_session(ledger_url).revoked_at is None   # just over: the next sign-in sweeps it away
    signed_in(one.test_client())
    assert query(ledger_url, "SELECT count(*) FROM admin_sessions") == [(1,)]


def test_the_cookie_lives_no_longer_than_the_session(ledger_url: str) -> None:
    app = signin_app(ledger_url, session_hours=2)
    try:
        answer = sign_in(app.test_client())
        assert answer.status_code == 303
        expires = answer.headers["Set-Cookie"].split("Expires=")[1].split(";")[0]
        left = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC) - datetime.now(UTC)
        assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)
    finally:
        app.extensions["billcast"].close()


def test_last_seen_is_written_at_most_once_a_minute(apps, ledger_url: str) -> None:
    one, two = apps
    browser = one.test_client()
    cookie = signed_in(browser)
    first = the_session(ledger_url).last_seen_at
    for client in (browser, holding(two, cookie)) * 3:
        assert reports(client) == 200
    assert the_session(ledger_url).last_seen_at == first
    earlier = datetime.now(UTC) - timedelta(minutes=2)
    set_times(ledger_url, last_seen_at=earlier)
    assert reports(browser) == 200
    assert the_session(ledger_url).last_seen_at > earlier + timedelta(minutes=1)


def test_the_ledger_holds_a_hash_of_the_cookie_s_secret_not_the_secret(apps, ledger_url: str) -> None:
    app = apps[0]
    browser = app.test_client()
    cookie = signed_in(browser)
    secret = app.session_interface.get_signing_serializer(app).loads(cookie)["sid"]
    ((row_id, mac),) = query(ledger_url, "SELECT id, token_mac FROM admin_sessions")
    assert len(secret) == 64 and secret not in (row_id, mac) and ADMIN not in mac
    assert row_id == hashlib.sha256(bytes.fromhex(secret)).hexdigest()


def test_a_forged_or_foreign_cookie_opens_nothing(apps) -> None:
    one, _ = apps
    assert reports(holding(one, "not-a-signed-cookie")) == 401
    other = signin_app("sqlite:///:memory:", session_secret=b"q" * 32)   # signed with another secret
    try:
        with other.test_request_context():
            forged = other.session_interface.get_signing_serializer(other).dumps({"sid": "ab" * 32})
        assert reports(holding(one, forged)) == 401
        with one.test_request_context():   # signed right, but no such session in the ledger
            unknown = one.session_interface.get_signing_serializer(one).dumps({"sid": "ab" * 32})
        assert reports(holding(one, unknown)) == 401
    finally:
        other.extensions["billcast"].close()
