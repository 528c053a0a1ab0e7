"""Real processes sharing one ledger, as in production: services on several workers, runs at once.

On PostgreSQL (and on SQLite too, one machine): two ``billcast serve`` processes
and a ``billcast run`` on one ledger take the same signed webhook ten times
each, all at once, and record one payment, once. Two ``billcast run`` of one
campaign started together on an empty database make its schema once and leave
one ledger row per recipient, matching what the store has live: they take
turns (the campaign lock), so each recipient is rendered and published once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stripe

from billcast.demo import sample_rules
from billcast.jobs.amounts import expected_amount
from billcast.jobs.ledger import Ledger
from billcast.jobs.links import recipient_token
from billcast.jobs.publish import STATE_KEY, published_hash
from billcast.jobs.store import open_store

from conftest import ROOT
from ledgers import query
from pg import free_port

pytestmark = pytest.mark.slow

CAMPAIGN = "pg-2026-11"
SECRET = "p" * 40
WEBHOOK_SECRET = "whsec_test_" + "w" * 32
CUSTOMERS = ["IT-000123", "IT-000124", "DE-000456", "US-001234"]
BILLCAST = Path(sys.executable).with_name("billcast")
RUN_LINE = re.compile(r"^pg-2026-11: (\d+) published, (\d+) unchanged, 0 refused, 0 failed", re.MULTILINE)


def write_campaign(folder: Path, ledger_url: str) -> Path:
    """A campaign of four sample customers on the PostgreSQL ledger, rendered tiny, its store a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [line for line in (ROOT / "examples" / "customers.jsonl").read_text(encoding="utf-8").splitlines()
             if any(f'"customer_id": "{cid}"' in line for cid in CUSTOMERS)]
    assert len(lines) == len(CUSTOMERS)
    (folder / "customers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "campaign.toml").write_text(f"""\
id = "{CAMPAIGN}"
input = "customers.jsonl"
default_locale = "en-US"
store = "file://store"
public_url = "https://bills.lumen.test"
link_secret_env = "BILLCAST_TEST_SECRET"
ledger = "{ledger_url}"
out = "out"
cache = "cache"
size = [160, 90]

{sample_rules()}""", encoding="utf-8")
    return folder / "campaign.toml"


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STRIPE_", "BILLCAST_"))}
    return env | {"BILLCAST_TEST_SECRET": SECRET, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}


def start_run(campaign: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BILLCAST), "run", str(campaign), "--workers", "1", "--quiet"], env=environment(),
                            cwd=campaign.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(run: subprocess.Popen) -> tuple[int, int]:
    """A run's (published, unchanged), after checking that it ended well."""
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output
    counts = RUN_LINE.search(output)
    assert counts is not None, output
    return int(counts[1]), int(counts[2])


@contextmanager
def service(campaign: Path) -> Iterator[str]:
    """``billcast serve`` in a process of its own; its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen([str(BILLCAST), "serve", str(campaign), "--port", str(port)], env=environment(),
                               cwd=campaign.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break          # it answers
            except OSError:
                assert time.monotonic() < deadline, "the service did not answer within a minute"
                time.sleep(0.2)
        yield base
        assert process.poll() is None, process.communicate()[0]
    finally:
        process.terminate()
        process.communicate(timeout=30)


def post(url: str, payload: bytes, signature: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": "application/json", "Stripe-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()


def completed(token: str, amount: int, currency: str) -> bytes:
    """A Checkout session paid in full, as Stripe would announce it."""
    session_id = "cs_test_" + secrets.token_hex(12)
    return json.dumps({
        "id": "evt_" + secrets.token_hex(12), "object": "event", "type": "checkout.session.completed",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "client_reference_id": token, "amount_total": amount,
            "currency": currency.lower(), "payment_status": "paid", "payment_intent": "pi_" + session_id[-12:],
            "metadata": {"campaign": CAMPAIGN, "option": "full", "source": "site"}}}}).encode()


def test_one_webhook_ten_times_to_each_of_two_services_records_one_payment(ledger_url: str, tmp_path: Path) -> None:
    url = ledger_url
    campaign = write_campaign(tmp_path / "campaign", url)
    assert finished(start_run(campaign)) == (len(CUSTOMERS), 0)
    token = recipient_token(SECRET.encode(), CAMPAIGN, "IT-000124")
    with Ledger(url) as ledger:
        recipient = ledger.recipient_by_token(token)
    assert recipient is not None
    payload = completed(token, expected_amount(recipient, "full"), recipient.currency)
    signature = stripe.WebhookSignature.generate_signature_header(payload.decode(), WEBHOOK_SECRET)

    with service(campaign) as first, service(campaign) as second:
        rerun = start_run(campaign)                       # a run on the same ledger meanwhile
        start = threading.Barrier(20)
        answers: list[tuple[int, str]] = []

        def deliver(base: str) -> None:
            start.wait(timeout=30)
            answers.append(post(base + "/stripe/webhook", payload, signature))

        senders = [threading.Thread(target=deliver, args=(base,)) for base in [first, second] * 10]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=120)
        assert finished(rerun) == (0, len(CUSTOMERS))

    assert sorted(answers) == [(200, "duplicate")] * 19 + [(200, "ok")]
    with Ledger(url) as ledger:
        [payment] = ledger.payments_for_token(token)
        paid = ledger.recipient_by_token(token)
    assert (payment["status"], payment["amount"], payment["flagged"]) == (
        "paid", expected_amount(recipient, "full"), False)
    assert paid is not None and paid.paid_at is not None
    assert query(url, "SELECT count(*) FROM webhook_events") == [(1,)]
    assert query(url, "SELECT count(*) FROM payments") == [(1,)]
    page = open_store(f"file://{campaign.parent / 'store'}").head(f"r/{token}/index.html")
    assert page is not None and page.metadata[STATE_KEY] == "paid"


def test_two_runs_of_one_campaign_at_once_publish_each_recipient_once(ledger_url: str, tmp_path: Path) -> None:
    url = ledger_url                                       # empty: both runs find no schema yet
    campaign = write_campaign(tmp_path / "campaign", url)
    runs = [start_run(campaign) for _ in range(2)]
    # they take turns: one publishes everyone, the other then finds everyone published
    assert sorted(finished(run) for run in runs) == [(0, len(CUSTOMERS)), (len(CUSTOMERS), 0)]

    tokens = {recipient_token(SECRET.encode(), CAMPAIGN, cid): cid for cid in CUSTOMERS}
    assert query(url, "SELECT count(*), count(DISTINCT token) FROM recipients") == [(4, 4)]
    assert query(url, "SELECT count(*) FROM alembic_version") == [(1,)]
    store = open_store(f"file://{campaign.parent / 'store'}")
    with Ledger(url) as ledger:
        rows = list(ledger.recipients(CAMPAIGN))
    assert {row.token: row.customer_id for row in rows} == tokens
    for row in rows:
        assert row.status == "published" and row.content_hash is not None
        assert published_hash(store, row.token) == row.content_hash       # the ledger says what is live
        media = f"r/{row.token}/m/{row.content_hash[:16]}/"
        assert {key.rsplit("/", 1)[1] for key in store.list(media)} >= {"video.mp4", "poster.jpg"}
    assert not list((campaign.parent / "store").rglob(".billcast-tmp-*"))   # no half-written object left
    manifest = (campaign.parent / "out" / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split(",")[0] for line in manifest[1:]) == sorted(CUSTOMERS)
    assert finished(start_run(campaign)) == (0, len(CUSTOMERS))  # and a third run finds nothing to do
