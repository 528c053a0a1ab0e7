"""Simultaneous first clicks on one pay link open one checkout session, on SQLite and PostgreSQL.

Sixteen threads click at once, and two processes of eight threads each (as
two gunicorn workers would): the demo provider records one session
under the click's idempotency key and sends every click to it; with Stripe,
every request carries the same key, Stripe answers with one session, and the
ledger records it once.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from test_payments import (FakeStripe, World, _app, click, client, demo, fake_stripe, loaded,  # noqa: F401 - fixtures
                           world)

CLICKS = 16


def at_once(count: int, start: Any, one_click: Callable[[], Any]) -> list[Any]:
    """``count`` threads that each wait at ``start``, then click once; their answers."""
    answers: list[Any] = []

    def run() -> None:
        start.wait()
        answers.append(one_click())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def redirects(client_of: Callable[[], FlaskClient], token: str, count: int, start: Any) -> list[tuple[int, str]]:
    def one() -> tuple[int, str]:
        answer = click(client_of(), token)
        return answer.status_code, answer.headers.get("Location", "")

    return at_once(count, start, one)


def test_sixteen_simultaneous_demo_clicks_open_one_session(demo: FlaskClient, world: World) -> None:
    app = demo.application
    answers = redirects(app.test_client, world.tokens["eur"], CLICKS, threading.Barrier(CLICKS))
    assert {status for status, _ in answers} == {303}
    assert len({location for _, location in answers}) == 1, answers
    rows = world.payments("eur")
    assert len(rows) == 1 and rows[0]["provider"] == "demo" and rows[0]["status"] == "pending"
    assert answers[0][1].endswith(f"/demo/checkout/{rows[0]['provider_ref']}")
    assert demo.get(answers[0][1]).status_code == 200


def _worker(world: World, start: Any, out: Any) -> None:
    """One process of the race: an app of its own on the shared ledger, eight threads clicking."""
    app = _app(world)
    try:
        out.put(redirects(app.test_client, world.tokens["eur"], CLICKS // 2, start))
    finally:
        app.extensions["billcast"].close()


def test_two_processes_clicking_at_once_open_one_session(world: World) -> None:
    fork = multiprocessing.get_context("fork")
    start, out = fork.Barrier(CLICKS), fork.Queue()
    workers = [fork.Process(target=_worker, args=(world, start, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [answer for _ in workers for answer in out.get(timeout=120)]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(answers) == CLICKS and {status for status, _ in answers} == {303}
    assert len({location for _, location in answers}) == 1, answers
    assert len(world.payments("eur")) == 1


def test_sixteen_simultaneous_stripe_clicks_are_one_session_recorded_once(client: FlaskClient, world: World,
                                                                          fake_stripe: FakeStripe) -> None:
    app = client.application
    answers = redirects(app.test_client, world.tokens["eur"], CLICKS, threading.Barrier(CLICKS))
    assert {status for status, _ in answers} == {303}
    assert len({location for _, location in answers}) == 1
    assert len({r["headers"]["Idempotency-Key"] for r in fake_stripe.sessions}) == 1
    assert len(fake_stripe.by_key) == 1
    rows = world.payments("eur")
    assert len(rows) == 1 and rows[0]["provider"] == "stripe"
    assert rows[0]["idempotency_key"] == fake_stripe.sessions[0]["headers"]["Idempotency-Key"]


def test_a_key_still_in_flight_at_stripe_keeps_its_key(client: FlaskClient, world: World,
                                                       fake_stripe: FakeStripe) -> None:
    """Stripe's 409 (another request with this key is running) is no parameter mismatch: the key is kept, the
    payer gets the error page with its retry, and the retry gets the one session."""
    fake_stripe.fail = (409, {"error": {"type": "idempotency_error", "message": (
        "There is currently another in-progress request using this Stripe API Idempotency Key (that probably "
        "means you submitted twice, and that's okay). Please try again later.")}})
    answer = click(client, world.tokens["eur"])
    assert answer.status_code == 502
    assert len(fake_stripe.sessions) == 3  # the first try and the client's two retries, all with one key
    assert len({r["headers"]["Idempotency-Key"] for r in fake_stripe.sessions}) == 1
    fake_stripe.fail = None
    assert click(client, world.tokens["eur"]).status_code == 303
    assert len({r["headers"]["Idempotency-Key"] for r in fake_stripe.sessions}) == 1
    assert len(world.payments("eur")) == 1
