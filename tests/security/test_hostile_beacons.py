"""Beacons from a client trying to inflate a page's figures, or to learn something, or to break the service.

One client counts once per view, play and progress mark however it varies its session ids
or its X-Forwarded-For; what it can still vary (its User-Agent) is bounded by the page's rate
limit; a repeat is answered exactly as a first; whatever the body, the answer is 204, 400,
413 or 415 (never a 500), the same whether the fast path in front of Flask or Flask's view
answers it; the log line names neither the token, nor the address, nor the User-Agent, nor
the session id.
"""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billcast.logs import JsonFormatter, TextFormatter

from test_events import (ADDRESS, AGENT, LIMIT, SESSION, TOKEN, app, campaign, client, loaded,  # noqa: F401
                         send, service_app, settings_for, stored)

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW_PATH = "text/plain; charset=utf8"  # taken by Flask's view, left alone by the fast path in front of it
VALUES = st.none() | st.booleans() | st.integers(-5, 130) | st.sampled_from([25, 50, 75, 100]) | st.text(max_size=30)
BODIES = st.dictionaries(st.sampled_from(["kind", "value", "src", "s", "x"]),
                         st.sampled_from(["view", "play", "progress", "cta_click", "pay_click", "site", SESSION])
                         | VALUES, max_size=4)


def test_a_client_varying_its_session_id_and_forwarded_address_counts_once(client, campaign) -> None:
    for i in range(40):
        answer = send(client, {"kind": "view", "s": f"{i:022d}"},
                      headers={"User-Agent": AGENT, "X-Forwarded-For": f"198.51.100.{i}"})  # no proxy trusted
        assert answer.status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None)]


def test_a_client_varying_its_user_agent_is_held_to_the_rate_limit(client, campaign) -> None:
    answers = [send(client, {"kind": "view", "s": f"{i:022d}"}, headers={"User-Agent": f"Agent/{i}"}).status_code
               for i in range(LIMIT + 5)]
    assert answers == [204] * LIMIT + [429] * 5
    assert len(stored(campaign)) == LIMIT


def test_a_huge_user_agent_is_hashed_not_kept(client, campaign) -> None:
    assert send(client, {"kind": "view"}, headers={"User-Agent": "X" * 8000}).status_code == 204
    assert stored(campaign) == [(TOKEN, "view", None)]


@pytest.fixture
def roomy(campaign):
    """A client of an app whose rate limit the fuzzing never reaches."""
    app = service_app(settings_for(campaign, events_per_minute=100_000))
    yield app.test_client()
    app.extensions["billcast"].close()


def _answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "X-Request-Id")
    return response.status_code, headers, response.data


@FUZZ
@given(body=BODIES)
def test_any_body_is_answered_alike_by_the_fast_path_and_the_view(roomy, body) -> None:
    fast = send(roomy, body)
    slow = send(roomy, body, content_type=SLOW_PATH)   # a repeat of the first, if that was recorded
    assert fast.status_code in (204, 400)
    assert _answer(fast) == _answer(slow)


@FUZZ
@given(raw=st.binary(max_size=64))
def test_any_bytes_are_answered_without_a_500(roomy, raw) -> None:
    assert send(roomy, raw).status_code in (204, 400)


def test_the_log_line_names_nothing_personal(client, campaign, caplog) -> None:
    caplog.set_level(logging.INFO)
    for body in ({"kind": "view", "s": SESSION}, {"kind": "nonsense", "s": SESSION}):
        send(client, body, headers={"User-Agent": AGENT, "X-Request-Id": "req-0123456789"})
    records = [r for r in caplog.records if r.name == "billcast.access"]
    assert [r.status for r in records] == [204, 400]
    for record in records:
        for formatter in (JsonFormatter(), TextFormatter()):
            line = formatter.format(record)
            assert "/e/<token>" in line and "req-0123456789" in line
            for secret in (TOKEN, ADDRESS, AGENT, SESSION):
                assert secret not in line
    assert json.loads(JsonFormatter().format(records[0]))["route"] == "/e/<token>"


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "text/plain;charset=UTF-8",
                                          "TEXT/PLAIN; CHARSET=\"utf-8\"", SLOW_PATH])
def test_each_way_in_records_the_beacon(client, campaign, content_type) -> None:
    assert send(client, {"kind": "pay_click", "src": "qr"}, content_type=content_type).status_code == 204
    assert stored(campaign) == [(TOKEN, "pay_click", None)]
