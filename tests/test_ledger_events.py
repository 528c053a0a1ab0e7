"""The beacon's ledger write (``add_beacon_event``) and revision 0006, on SQLite and on PostgreSQL.

A view, a play and each progress mark count once per page link and visitor and once per
page link and session (unique indexes, ``INSERT ... ON CONFLICT DO NOTHING``); clicks count
every time; a ledger at 0004 with duplicate events is upgraded keeping every row.
"""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest

from billcast.jobs.ledger import Ledger, LedgerError, schema_state

from ledgers import HEAD, columns, execute, query
from test_ledger import NOW, ledger, publish, token, url  # noqa: F401 - fixtures
from test_ledger_migrations import at_revision, open_or_upgrade

VISITOR, OTHER_VISITOR = "0123456789abcdef", "fedcba9876543210"
SESSION, OTHER_SESSION = "A" * 22, "B" * 22
WINDOW = timedelta(minutes=1)


def beacon(ledger: Ledger, tok: str, kind: str, value: int | None = None, *, visitor: str = VISITOR,
           session: str | None = SESSION, limit: int = 120):
    return ledger.add_beacon_event(campaign_ids=("c1",), token=tok, kind=kind, value=value, at=NOW, limit=limit,
                                   window=WINDOW, visitor=visitor, session=session)


def kinds(ledger: Ledger) -> list[tuple[str, int | None]]:
    return [(e["kind"], e["value"]) for e in ledger.events("c1")]


def test_a_view_play_and_each_mark_are_recorded_once_and_repeats_say_so(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    marks = [("view", None), ("play", None), *(("progress", v) for v in (25, 50, 75, 100))]
    first = [beacon(ledger, tok, kind, value) for kind, value in marks]
    again = [beacon(ledger, tok, kind, value, session=None) for kind, value in marks]          # same visitor
    moved = [beacon(ledger, tok, kind, value, visitor=OTHER_VISITOR) for kind, value in marks]  # same session
    assert all(r.recorded and not r.repeat for r in first), first
    assert all(r.repeat and not r.recorded and r.retry_after is None for r in again + moved)
    assert kinds(ledger) == marks
    rows = list(ledger.events("c1"))
    assert [(e["once"], e["visitor"], e["session"]) for e in rows[:3]] == [
        ("view", VISITOR, SESSION), ("play", VISITOR, SESSION), ("progress:25", VISITOR, SESSION)]


def test_another_visitor_with_another_session_counts_again(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    assert beacon(ledger, tok, "view").recorded
    assert beacon(ledger, tok, "view", visitor=OTHER_VISITOR, session=OTHER_SESSION).recorded
    assert beacon(ledger, tok, "view", visitor=OTHER_VISITOR, session=None).repeat
    assert beacon(ledger, publish(ledger, "IT-2"), "view").recorded   # another page link
    assert kinds(ledger) == [("view", None)] * 3


def test_clicks_are_recorded_every_time(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    assert all(beacon(ledger, tok, "pay_click").recorded for _ in range(3))
    assert [e["once"] for e in ledger.events("c1")] == [None] * 3


def test_repeats_are_not_counted_by_the_rate_limit(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    assert beacon(ledger, tok, "view", limit=2).recorded
    assert all(beacon(ledger, tok, "view", limit=2).repeat for _ in range(5))
    assert beacon(ledger, tok, "pay_click", limit=2).recorded
    refused = beacon(ledger, tok, "play", limit=2)
    assert not refused.recorded and not refused.repeat and refused.retry_after == 60.0


def test_unknown_tokens_and_other_campaigns_are_neither(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    ledger.ensure_campaign("c2", link_days=30)
    for result in (beacon(ledger, token(), "view"),
                   ledger.add_beacon_event(campaign_ids=("c2",), token=tok, kind="view", value=None, at=NOW,
                                           limit=5, window=WINDOW, visitor=VISITOR)):
        assert (result.recorded, result.repeat, result.retry_after) == (False, False, None)
    assert kinds(ledger) == []
    both = ledger.add_beacon_event(campaign_ids=("c2", "c1"), token=tok, kind="view", value=None, at=NOW, limit=5,
                                   window=WINDOW, visitor=VISITOR)   # a ledger serving two campaigns
    assert both.recorded and list(ledger.events("c1"))[0]["campaign_id"] == "c1"


@pytest.mark.parametrize(("field", "values"), [
    ("visitor", {"visitor": "0123456789ABCDEF"}), ("visitor", {"visitor": "192.0.2.1"}),
    ("session", {"session": "short"}), ("session", {"session": "A" * 21 + "="})])
def test_a_visitor_or_session_of_the_wrong_shape_is_refused(ledger: Ledger, field: str, values: dict) -> None:
    tok = publish(ledger, "IT-1")
    with pytest.raises(LedgerError, match=f"add_beacon_event: {field}: must be"):
        beacon(ledger, tok, "view", **values)
    assert kinds(ledger) == []


def _race(url: str, tok: str, n: int) -> bool:
    with Ledger(url) as mine:
        return mine.add_beacon_event(campaign_ids=("c1",), token=tok, kind="view", value=None, at=NOW, limit=120,
                                     window=WINDOW, visitor=VISITOR, session=f"{n:022d}").recorded


def test_racing_processes_record_a_view_once(ledger: Ledger, url: str) -> None:
    tok = publish(ledger, "IT-1")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        recorded = pool.starmap(_race, [(url, tok, n) for n in range(8)])
    assert recorded.count(True) == 1 and kinds(ledger) == [("view", None)]


def test_a_ledger_at_0004_with_duplicate_events_is_upgraded_keeping_them(url: str) -> None:
    tok = token()
    at_revision(url, "0004")  # a ledger as Billcast made it before revision 0006
    execute(url, "INSERT INTO campaigns (id, created_at, updated_at, link_days) VALUES "
                 "('c1', '2025-03-01 12:00:00', '2025-03-01 12:00:00', 30)")
    for _ in range(3):   # what one client could add before: the same view, again and again
        execute(url, f"INSERT INTO events (campaign_id, token, kind, value, at) VALUES "
                     f"('c1', '{tok}', 'view', NULL, '2025-03-02 12:00:00')")
    open_or_upgrade(url)
    assert schema_state(url).revision == HEAD
    assert columns(url, "events")[-3:] == ["once", "visitor", "session"]
    assert query(url, "SELECT kind, once, visitor, session FROM events") == [("view", None, None, None)] * 3
    with Ledger(url) as upgraded:
        publish(upgraded, "IT-1", token=tok)
        assert beacon(upgraded, tok, "view").recorded        # the old rows have no visitor: a new view counts
        assert beacon(upgraded, tok, "view").repeat
        assert kinds(upgraded) == [("view", None)] * 4
