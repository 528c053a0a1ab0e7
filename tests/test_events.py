"""``POST /e/<token>``: the pages' engagement beacons, through Flask's test client.

Good beacons become ledger events; every bad one is refused naming the problem (JSON);
unknown tokens are answered alike and dropped; a view, a play and each progress mark count
once per page link and visitor (a keyed daily hash of address and User-Agent) and once per
session (the page's "s"), repeats answered alike; the rate limit is per page link, counted
in the ledger (so every worker keeps the one limit); the client's address is never stored.
"""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask

from billcast.jobs.campaign import Campaign, load_campaign
from billcast.demo import sample_rules
from billcast.jobs.ledger import Ledger
from billcast.service import events
from billcast.service import ServiceSettings, create_app

from ledgers import query, table_names

CAMPAIGN = "ev-2026-11"
PUBLIC = "https://bills.lumen.test"
PAY = "https://pay.lumen.test"
TOKEN = "EvTok3n_0123456789abcd"     # published
OTHER = "EvTok3n_other_56789abc"     # published
PENDING = "EvTok3n_pending_789abc"   # reserved, never published
UNKNOWN = "EvTok3n_unknown_789abc"   # in no ledger
ADDRESS = "203.0.113.77"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BEACON = "text/plain;charset=UTF-8"  # what navigator.sendBeacon sends with a string
SESSION = "Qm9ndXNTZXNzaW9uSWQxMg"  # a page's session id: 22 URL-safe characters
AGENT = "Mozilla/5.0 (X11; Linux x86_64) TestAgent/1.0"
LIMIT = 10  # events per minute per page link, in these tests


# --- shared with test_reports.py and test_browser_events.py ------------------------------------

def write_campaign(folder: Path, campaign_id: str = CAMPAIGN, *, public_url: str = PUBLIC, pay_url: str = PAY,
                   store: str = "file://store", ledger: str = "sqlite:///ledger.db") -> Campaign:
    """A loadable campaign file in ``folder`` (its ledger and store there too), loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.jsonl").write_text("", encoding="utf-8")
    (folder / "campaign.toml").write_text(f"""\
id = "{campaign_id}"
input = "customers.jsonl"
store = "{store}"
public_url = "{public_url}"
pay_url = "{pay_url}"
link_days = 60
ledger = "{ledger}"
out = "out"

{sample_rules()}""", encoding="utf-8")
    return load_campaign(folder / "campaign.toml")


def settings_for(*campaigns: Campaign, **overrides: object) -> ServiceSettings:
    values: dict[str, object] = {"campaigns": campaigns, "webhook_secret": "whsec_test", "session_secret": b"s" * 32,
                                 "admin_token": "admin-test-token-0123456789", "secure_cookies": False}
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


def service_app(settings: ServiceSettings) -> Flask:
    return create_app(settings)


def publish(ledger: Ledger, campaign_id: str, customer_id: str, token: str, *, storyboard: str = "bill_explainer",
            variant: str = "", amount_due: str = "42.00", currency: str = "EUR", **extra: object) -> None:
    ledger.record_published(campaign_id=campaign_id, customer_id=customer_id, token=token, storyboard=storyboard,
                            variant=variant, amount_due=Decimal(amount_due), currency=currency,
                            content_hash=f"h-{customer_id}", published_at=NOW, expires_at=NOW + timedelta(days=60),
                            **extra)


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return write_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture
def campaign(loaded: Campaign, ledger_url: str) -> Campaign:
    """The campaign, with a ledger of its own for each test (SQLite, then PostgreSQL): two recipients published,
    one pending."""
    campaign = dataclasses.replace(loaded, ledger=ledger_url)
    with Ledger(campaign.ledger) as ledger:
        ledger.ensure_campaign(campaign.id, link_days=60)
        publish(ledger, campaign.id, "IT-000123", TOKEN)
        publish(ledger, campaign.id, "IT-000124", OTHER)
        ledger.reserve(campaign_id=campaign.id, customer_id="IT-000125", token=PENDING, storyboard="bill_explainer",
                       variant="", amount_due=Decimal("10.00"), currency="EUR")
    return campaign


@pytest.fixture
def app(campaign: Campaign):
    app = service_app(settings_for(campaign, events_per_minute=LIMIT))
    yield app
    app.extensions["billcast"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def send(client, body: object, token: str = TOKEN, *, content_type: str = BEACON, address: str = ADDRESS,
         headers: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/e/{token}", data=data, content_type=content_type, headers=headers or {},
                       environ_base={"REMOTE_ADDR": address})


def stored(campaign: Campaign) -> list[tuple[str, str, int | None]]:
    with Ledger(campaign.ledger) as ledger:
        return [(e["token"], e["kind"], e["value"]) for e in ledger.events(campaign.id)]


# --- good beacons --------------------------------------------------------------------------------

def test_good_beacons_are_recorded_in_order(client, campaign) -> None:
    beacons = [{"kind": "view"}, {"kind": "play"}, *({"kind": "progress", "value": v} for v in (25, 50, 75, 100)),
               {"kind": "cta_click", "src": "video"}, {"kind": "pay_click", "src": "site"}]
    before = datetime.now(UTC)
    for beacon in beacons:
        response = send(client, beacon)
        assert (response.status_code, response.data) == (204, b"")
    assert stored(campaign) == [(TOKEN, "view", None), (TOKEN, "play", None), (TOKEN, "progress", 25),
                                (TOKEN, "progress", 50), (TOKEN, "progress", 75), (TOKEN, "progress", 100),
                                (TOKEN, "cta_click", None), (TOKEN, "pay_click", None)]
    with Ledger(campaign.ledger) as ledger:
        times = [e["at"] for e in ledger.events(campaign.id)]
    assert all(before <= t <= datetime.now(UTC) for t in times)


@pytest.mark.parametrize("content_type", [BEACON, "text/plain", "application/json", "application/json; charset=utf-8"])
def test_sendbeacon_text_plain_and_json_are_both_taken(client, campaign, content_type) -> None:
    assert send(client, {"kind": "pay_click"}, content_type=content_type).status_code == 204
    assert stored(campaign) == [(TOKEN, "pay_click", None)]


# --- bad beacons ---------------------------------------------------------------------------------

BAD = [
    (b"", "body: is empty"),
    (b"   ", "body: is empty"),
    (b"\xff\xfe{}", "body: is not UTF-8 text"),
    (b"{kind: view}", "body: is not JSON"),
    (b'{"kind": "view"} trailing', "body: is not JSON"),
    (b'["view"]', "body: must be a JSON object"),
    (b'"view"', "body: must be a JSON object"),
    ({"kind": "view", "name": "Maria"}, 'body: unknown key "name"'),
    ({"kind": "view", "email": "m@example.com"}, 'body: unknown key "email"'),
    ({"kind": "view", "session": SESSION}, 'body: unknown key "session"; a beacon has only kind, value, src, s'),
    ({"kind": "view", "s": SESSION[:-1]}, "s: must be the page's session id, 22 URL-safe characters"),
    ({"kind": "view", "s": SESSION + "A"}, "s: must be the page's session id"),
    ({"kind": "view", "s": SESSION[:-1] + "="}, "s: must be the page's session id"),
    ({"kind": "view", "s": SESSION[:-1] + "\u00e9"}, "s: must be the page's session id"),
    ({"kind": "view", "s": 1234567890123456789012}, "s: must be the page's session id"),
    ({"kind": "view", "s": None}, "s: must be the page's session id"),
    ({"kind": "view", "s": [SESSION]}, "s: must be the page's session id"),
    ({"value": 25}, "kind: is required"),
    ({"kind": "watch"}, 'kind: must be one of view, play, progress, cta_click, pay_click; got "watch"'),
    ({"kind": 5}, "kind: must be one of"),
    ({"kind": ["view"]}, "kind: must be one of"),
    ({"kind": "progress"}, "value: is required for progress"),
    ({"kind": "progress", "value": 33}, "value: must be 25, 50, 75 or 100 for progress; got 33"),
    ({"kind": "progress", "value": "50"}, "value: must be 25, 50, 75 or 100"),
    ({"kind": "progress", "value": 50.0}, "value: must be 25, 50, 75 or 100"),
    ({"kind": "progress", "value": True}, "value: must be 25, 50, 75 or 100"),
    ({"kind": "progress", "value": None}, "value: must be 25, 50, 75 or 100"),
    (b'{"kind": "progress", "value": NaN}', "body: NaN is not a JSON number"),
    ({"kind": "view", "value": 25}, "value: only progress carries a value, not view"),
    ({"kind": "view", "src": "site"}, "src: only cta_click and pay_click carry a src, not view"),
    ({"kind": "pay_click", "src": "sms"}, 'src: must be one of video, site, qr, email; got "sms"'),
    ({"kind": "pay_click", "src": None}, "src: must be one of"),
    (b'{"kind": "view", "kind": "play"}', 'body: key "kind" appears twice'),
]


@pytest.mark.parametrize(("body", "problem"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_bad_beacon_is_refused_naming_the_problem(client, campaign, body, problem) -> None:
    response = send(client, body)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert problem in response.get_json()["error"] and response.get_json()["status"] == 400
    assert stored(campaign) == []


@pytest.mark.parametrize(("content_type", "problem"), [
    ("application/x-www-form-urlencoded", "got application/x-www-form-urlencoded"),
    ("multipart/form-data; boundary=x", "got multipart/form-data"),
    ("", "got none"),
    ("text/plain; charset=latin-1", 'charset must be UTF-8; got "latin-1"'),
])
def test_other_content_types_are_refused(client, campaign, content_type, problem) -> None:
    response = send(client, {"kind": "view"}, content_type=content_type)
    assert response.status_code == 415
    error = response.get_json()["error"]
    assert error.startswith("Content-Type: ") and problem in error
    assert stored(campaign) == []


def test_an_oversize_body_is_refused_before_it_is_read(client, campaign) -> None:
    body = json.dumps({"kind": "view", "pad": "x" * 5000}).encode()
    response = send(client, body)
    assert response.status_code == 413
    assert response.get_json()["detail"] == f"body: is {len(body)} bytes; this route takes at most 4096"
    exactly = b'{"kind": "view"}' + b" " * (4096 - 16)
    assert send(client, exactly).status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None)]


def test_an_oversize_body_without_a_length_is_cut_off(client, campaign) -> None:
    big = io.BytesIO(b'{"kind": "view"}' + b" " * 5000)
    response = client.post(f"/e/{TOKEN}", input_stream=big, content_type=BEACON,
                           environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
                           environ_base={"REMOTE_ADDR": ADDRESS})
    assert response.status_code == 413
    assert "is over 4096 bytes" in response.get_json()["error"]
    assert stored(campaign) == []


@pytest.mark.parametrize("token", ["short", "has.dot_0123456789abcd", "x" * 129])
def test_a_malformed_token_is_refused(client, campaign, token) -> None:
    response = send(client, {"kind": "view"}, token=token)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("token: must be 16-128")


@pytest.mark.parametrize("token", [UNKNOWN, PENDING, "A" * 16, "B" * 128])
def test_unknown_or_unpublished_tokens_are_answered_alike_and_dropped(client, campaign, token) -> None:
    response = send(client, {"kind": "view"}, token=token)
    assert (response.status_code, response.data) == (204, b"")
    assert stored(campaign) == []


def test_get_is_not_a_beacon(client, campaign) -> None:
    assert client.get(f"/e/{TOKEN}").status_code in (404, 405)
    assert stored(campaign) == []


# --- the rate limit ------------------------------------------------------------------------------

def test_rate_limit_is_per_page_link_over_a_sliding_minute(client, campaign) -> None:
    now = datetime.now(UTC)
    with Ledger(campaign.ledger) as ledger:  # ten views over the last 50 seconds: the first leaves the window in 10 s
        for i in range(LIMIT):
            ledger.add_event(campaign_id=campaign.id, token=TOKEN, kind="view", value=None,
                             at=now - timedelta(seconds=50 - 5 * i))
    response = send(client, {"kind": "view"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "10"
    assert "too many events" in response.get_json()["error"]
    assert send(client, {"kind": "play"}, address="198.51.100.9").status_code == 429  # the address changes nothing
    assert send(client, {"kind": "play"}, token=OTHER).status_code == 204              # another page
    assert [kind for token, kind, _ in stored(campaign) if token == TOKEN] == ["view"] * LIMIT


def test_the_window_slides(client, campaign) -> None:
    now = datetime.now(UTC)
    with Ledger(campaign.ledger) as ledger:  # the oldest of ten is just over a minute old: one more fits
        for age in [61, *range(50, 50 - LIMIT + 1, -1)]:
            ledger.add_event(campaign_id=campaign.id, token=TOKEN, kind="view", value=None,
                             at=now - timedelta(seconds=age))
    assert send(client, {"kind": "progress", "value": 25}).status_code == 204
    assert send(client, {"kind": "progress", "value": 50}).status_code == 429
    assert [kind for token, kind, _ in stored(campaign)][-1] == "progress"


def test_the_limit_holds_across_apps_sharing_a_ledger(campaign) -> None:
    """Two apps stand for two workers: the count is the ledger's, not a process's."""
    first, second = (service_app(settings_for(campaign, events_per_minute=LIMIT)).test_client() for _ in range(2))
    answers = [send(first if i % 2 else second, {"kind": "pay_click"}).status_code for i in range(LIMIT + 2)]
    assert answers == [204] * LIMIT + [429, 429]
    assert len(stored(campaign)) == LIMIT


def test_beacons_that_are_not_recorded_are_not_counted(client, campaign) -> None:
    for _ in range(LIMIT + 5):
        assert send(client, b"nonsense").status_code == 400
        assert send(client, {"kind": "view"}, token=UNKNOWN).status_code == 204
    assert send(client, {"kind": "view"}).status_code == 204


# --- counted once --------------------------------------------------------------------------------

def session_id(n: int) -> str:
    """A page's session id (what site.js makes: 22 URL-safe characters), one per n."""
    return f"S{n:021d}"


def test_views_from_one_client_count_once_whatever_session_ids_it_sends(client, campaign) -> None:
    same = [send(client, {"kind": "view", "s": SESSION}, headers={"User-Agent": AGENT}) for _ in range(60)]
    fresh = [send(client, {"kind": "view", "s": session_id(i)}, headers={"User-Agent": AGENT}) for i in range(60)]
    assert {(r.status_code, r.data) for r in same + fresh} == {(204, b"")}  # a repeat is answered as a first
    assert stored(campaign) == [(TOKEN, "view", None)]


def test_two_visitors_count_twice(client, campaign) -> None:
    assert send(client, {"kind": "view", "s": SESSION}, headers={"User-Agent": AGENT}).status_code == 204
    assert send(client, {"kind": "view", "s": session_id(1)}, address="198.51.100.9",
                headers={"User-Agent": AGENT}).status_code == 204               # another address
    assert send(client, {"kind": "view", "s": session_id(2)},
                headers={"User-Agent": AGENT + " Other/2"}).status_code == 204  # another browser, same address
    assert send(client, {"kind": "view", "s": session_id(3)}, token=OTHER,
                headers={"User-Agent": AGENT}).status_code == 204               # the same visitor, another page
    assert stored(campaign) == [(TOKEN, "view", None)] * 3 + [(OTHER, "view", None)]


def test_play_and_each_progress_mark_count_once(client, campaign) -> None:
    marks = [{"kind": "play"}, *({"kind": "progress", "value": v} for v in (25, 50, 75, 100))]
    for _ in range(3):   # watched three times in one tab, then again after a reload with a new id
        for mark in marks:
            assert send(client, {**mark, "s": SESSION}).status_code == 204
    for mark in marks:
        assert send(client, {**mark, "s": session_id(9)}).status_code == 204
    assert stored(campaign) == [(TOKEN, "play", None), *((TOKEN, "progress", v) for v in (25, 50, 75, 100))]


def test_a_session_that_changes_address_counts_once(client, campaign) -> None:
    """A phone moving from Wi-Fi to mobile data mid-visit: the server's key changes, the page's id does not."""
    for address in (ADDRESS, "198.51.100.9", "2001:db8::7"):
        assert send(client, {"kind": "view", "s": SESSION}, address=address).status_code == 204
        assert send(client, {"kind": "progress", "value": 25, "s": SESSION}, address=address).status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None), (TOKEN, "progress", 25)]


def test_beacons_without_a_session_id_are_taken_and_count_once_per_visitor(client, campaign) -> None:
    """Pages published before the session id send none: each visitor's view still counts once."""
    for _ in range(5):
        assert send(client, {"kind": "view"}, headers={"User-Agent": AGENT}).status_code == 204
        assert send(client, {"kind": "view"}, address="198.51.100.9").status_code == 204
    assert send(client, {"kind": "view", "s": SESSION}, headers={"User-Agent": AGENT}).status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None)] * 2


def test_clicks_count_every_time(client, campaign) -> None:
    for src in ("video", "video", "site"):
        assert send(client, {"kind": "cta_click" if src == "video" else "pay_click", "src": src,
                             "s": SESSION}).status_code == 204
    assert stored(campaign) == [(TOKEN, "cta_click", None)] * 2 + [(TOKEN, "pay_click", None)]


def test_the_count_holds_across_apps_sharing_a_ledger(campaign) -> None:
    """Two apps stand for two workers: the unique indexes are the ledger's, so neither counts a repeat."""
    apps = [service_app(settings_for(campaign, events_per_minute=LIMIT)) for _ in range(2)]
    try:
        for i in range(6):
            assert send(apps[i % 2].test_client(), {"kind": "view", "s": session_id(i)}).status_code == 204
            assert send(apps[i % 2].test_client(), {"kind": "play", "s": SESSION}, address=f"198.51.100.{i}"
                        ).status_code == 204
    finally:
        for app in apps:
            app.extensions["billcast"].close()
    assert stored(campaign) == [(TOKEN, "view", None), (TOKEN, "play", None)]


def test_over_the_limit_a_repeat_is_answered_as_a_first(client, campaign) -> None:
    assert send(client, {"kind": "view", "s": SESSION}).status_code == 204
    with Ledger(campaign.ledger) as ledger:
        for _ in range(LIMIT - 1):
            ledger.add_event(campaign_id=campaign.id, token=TOKEN, kind="pay_click", value=None,
                             at=datetime.now(UTC))
    repeat, first = send(client, {"kind": "view", "s": SESSION}), send(client, {"kind": "view"}, address="192.0.2.1")
    assert repeat.status_code == first.status_code == 429
    assert repeat.get_json() == first.get_json() and repeat.headers["Retry-After"] == first.headers["Retry-After"]


def test_the_report_counts_recipients_not_beacons(client, campaign) -> None:
    from billcast.jobs.report import campaign_report

    for i in range(30):   # one visitor inflating everything it can on one page, another who only looked
        for body in ({"kind": "view"}, {"kind": "play"}, {"kind": "progress", "value": 50}):
            send(client, {**body, "s": session_id(i)}, headers={"User-Agent": AGENT})
    send(client, {"kind": "view", "s": SESSION}, token=OTHER, address="198.51.100.9")
    assert sorted(stored(campaign)) == sorted([(TOKEN, "view", None), (TOKEN, "play", None),
                                               (TOKEN, "progress", 50), (OTHER, "view", None)])
    with Ledger(campaign.ledger) as ledger:
        total = campaign_report(ledger, campaign.id).total
    assert (total.published, total.viewed, total.played, total.watched_half, total.clicked) == (2, 2, 1, 1, 0)


def test_the_visitor_key_is_a_daily_keyed_hash() -> None:
    secret, day = b"s" * 32, NOW.date()
    key = events.visitor_key(secret, ADDRESS, AGENT, day)
    assert len(key) == 16 and int(key, 16) >= 0
    assert key == events.visitor_key(secret, ADDRESS, AGENT, day)
    others = {events.visitor_key(secret, ADDRESS, AGENT, day + timedelta(days=1)),
              events.visitor_key(secret, "203.0.113.78", AGENT, day), events.visitor_key(secret, ADDRESS, "", day),
              events.visitor_key(b"t" * 32, ADDRESS, AGENT, day)}
    assert len(others) == 4 and key not in others


def test_the_next_day_counts_again(client, campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    days = iter([NOW, NOW, NOW + timedelta(days=1)])

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return next(days)

    monkeypatch.setattr(events, "datetime", Clock)
    for _ in range(3):
        assert send(client, {"kind": "view"}).status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None)] * 2


# --- privacy -------------------------------------------------------------------------------------

def test_the_address_is_never_stored(app, client, campaign) -> None:
    for beacon in ({"kind": "view"}, {"kind": "play", "s": SESSION}, {"kind": "pay_click", "src": "qr"}):
        send(client, beacon, headers={"User-Agent": "Mozilla/5.0 TestAgent", "X-Forwarded-For": "192.0.2.44"})
    app.extensions["billcast"].close()
    if campaign.ledger.startswith("sqlite"):
        db = Path(campaign.ledger.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))  # the file, its WAL and shm
        for secret in (ADDRESS, "192.0.2.44", "TestAgent"):
            assert secret.encode() not in raw
    values = [str(v) for table in table_names(campaign.ledger)
              for row in query(campaign.ledger, f'SELECT * FROM "{table}"') for v in row]
    assert len(stored(campaign)) == 3 and any("view" in v for v in values)
    assert not any(secret in v for v in values for secret in (ADDRESS, "192.0.2.44", "TestAgent"))


# --- CORS ----------------------------------------------------------------------------------------

def test_a_beacon_from_the_page_origin_may_read_the_answer(client, campaign) -> None:
    response = send(client, {"kind": "view"}, headers={"Origin": PUBLIC})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PUBLIC
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    other = send(client, {"kind": "view"}, headers={"Origin": "https://elsewhere.example"})
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers


def test_preflight_allows_a_json_post_from_the_page(client, campaign) -> None:
    response = client.options(f"/e/{TOKEN}", headers={
        "Origin": PUBLIC, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PUBLIC
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert stored(campaign) == []
