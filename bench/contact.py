"""What the run's contact check costs a record: the ledger read for opt-outs, disputes and recent messages.

    .venv/bin/python bench/contact.py                    # 20,000 recipients in 4 campaigns, 2,000 reads each
    .venv/bin/python bench/contact.py --recipients 100000 --reads 5000

A SQLite ledger (WAL, in a temporary folder) holds ``--recipients`` recipients
spread over four campaigns, 5 % of them opted out and 1 % disputing. Side by
side in one run, ``--reads`` random customers are looked up with the read the
driver already made for every record before (``Ledger.recipient``), with the
contact check without the weekly cap (``contact_state``, two indexed reads)
and with it (three); prints each one's time a record and its ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billcast.jobs.ledger import Ledger


def fill(ledger: Ledger, recipients: int, rng: random.Random) -> list[str]:
    campaigns = [f"c{n}" for n in range(4)]
    for campaign in campaigns:
        ledger.ensure_campaign(campaign, link_days=60)
    customers = [f"CU-{n:07}" for n in range(recipients // len(campaigns))]
    now = datetime.now(UTC)
    with ledger._tx("bench", write=True) as conn:  # one transaction: the fill is not what is measured
        from billcast.jobs.ledger.schema import recipient_table

        conn.execute(recipient_table.insert(), [
            {"campaign_id": campaign, "customer_id": customer, "token": secrets.token_urlsafe(16),
             "storyboard": "firm_reminder", "variant": "", "status": "published", "amount_due": Decimal("10.00"),
             "currency": "EUR", "content_hash": "h", "published_at": now - timedelta(days=rng.randrange(30)),
             "expires_at": now + timedelta(days=30), "updated_at": now}
            for campaign in campaigns for customer in customers])
    for customer in rng.sample(customers, len(customers) // 20):
        ledger.suppress(customer_id=customer, channel="email", reason="optout", source="page")
    for customer in rng.sample(customers, len(customers) // 100):
        ledger.open_dispute(campaign_id="c0", customer_id=customer, token=secrets.token_urlsafe(16),
                            reason="wrong_amount", details=None)
    return customers


def timed(reads: list[str], call) -> float:
    started = time.perf_counter()
    for customer in reads:
        call(customer)
    return (time.perf_counter() - started) / len(reads) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder, Ledger(f"sqlite:///{Path(folder) / 'ledger.db'}") as ledger:
        customers = fill(ledger, args.recipients, rng)
        reads = [rng.choice(customers) for _ in range(args.reads)]
        since = datetime.now(UTC) - timedelta(days=7)
        rows = {
            "recipient (the read every record had)": timed(reads, lambda c: ledger.recipient("c3", c)),
            "contact_state, no weekly cap": timed(reads, lambda c: ledger.contact_state(c, "email",
                                                                                       campaign_id="c3")),
            "contact_state with the weekly cap": timed(reads, lambda c: ledger.contact_state(
                c, "email", campaign_id="c3", since=since)),
        }
    base = next(iter(rows.values()))
    print(f"{args.recipients} recipients in 4 campaigns, {args.reads} reads each, SQLite")
    for name, ms in rows.items():
        print(f"  {name:<40} {ms:6.3f} ms a record   {ms / base:4.2f}x")
    print(json.dumps({"bench": "contact", "recipients": args.recipients, "reads": args.reads,
                      "ms": {name: round(ms, 4) for name, ms in rows.items()}}))


if __name__ == "__main__":
    main()
