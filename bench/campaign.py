"""Campaign throughput: recipients per minute end to end, and where the time goes.

    .venv/bin/python bench/campaign.py                  # 200 recipients, 1280x720, 2 workers
    .venv/bin/python bench/campaign.py --recipients 40 --size 640x360

A fresh campaign of N distinct recipients (the sample records, each copy with
its own id, name, amounts and usage; debtors and bill payers in the samples'
proportions, so all four storyboards and both A/B variants run) goes through
``billcast run`` from an empty segment cache into a folder store and a SQLite
ledger, all in a temporary folder. Then the same campaign again, unchanged, to
show what a resumed or repeated run costs. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.campaign import load_campaign  # noqa: E402
from jobs.run import run_campaign  # noqa: E402

SECRET = b"bench-secret-" + b"x" * 32


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cents(value: str | float, k: int) -> str:
    return str(Decimal(str(value)) + Decimal(k) / 100)


def recipients(count: int) -> list[dict]:
    """``count`` distinct records made from the samples: ids, names, amounts and usage moved a little."""
    samples = [json.loads(line) for line in (ROOT / "examples" / "customers.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    out = []
    for i in range(count):
        record = json.loads(json.dumps(samples[i % len(samples)]))
        k = 1 + i
        record["customer_id"] = f"{record['customer_id']}-{k}"
        record["first_name"] = f"{record['first_name']} {k}"
        bill = record["bill"]
        bill["total"] = _cents(bill["total"], k)
        if bill.get("lines"):
            bill["lines"][0]["amount"] = _cents(bill["lines"][0]["amount"], k)
        for period in bill.get("usage") or ():
            period["quantity"] = round(period["quantity"] + k, 1)
        debt = record.get("debt")
        if debt:
            debt["overdue_total"] = _cents(debt["overdue_total"], k)
            if debt.get("invoices"):
                debt["invoices"][0]["amount"] = _cents(debt["invoices"][0]["amount"], k)
        out.append(record)
    return out


def write_campaign(folder: Path, count: int, size: tuple[int, int], workers: int) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in recipients(count)]
    (folder / "customers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    boards = ROOT / "storyboards"
    (folder / "campaign.toml").write_text(f"""\
id = "bench"
input = "customers.jsonl"
store = "file://store"
ledger = "sqlite:///ledger.db"
out = "out"
cache = "cache"
public_url = "https://bills.lumen.test"
link_secret_env = "BILLCAST_BENCH_SECRET"
size = [{size[0]}, {size[1]}]
workers = {workers}

[[rules]]
when = "debt and debt.days_past_due > 30"
storyboard = "{boards / 'firm_reminder.yaml'}"

[[rules]]
when = "debt"
variants = {{ "{boards / 'soft_reminder.yaml'}" = 50, "{boards / 'soft_reminder_b.yaml'}" = 50 }}

[[rules]]
storyboard = "{boards / 'bill_explainer.yaml'}"
""", encoding="utf-8")
    return folder / "campaign.toml"


def timed_run(path: Path, workers: int) -> dict:
    campaign = load_campaign(path)
    cpu, wall = cpu_seconds(), time.monotonic()
    counts = run_campaign(campaign, secret=SECRET, workers=workers, log=lambda text: print(text, file=sys.stderr))
    wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    total = counts.published + counts.unchanged
    stages = {k: round(v, 1) for k, v in counts.seconds.items()}
    return {"recipients": total, "published": counts.published, "unchanged": counts.unchanged,
            "failed": counts.failed + counts.refused, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "per_minute": round(total / wall * 60, 1), "cpu_s_per_recipient": round(cpu / max(total, 1), 2),
            "stage_cpu_s": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=200)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="billcast-bench-") as tmp:
        path = write_campaign(Path(tmp), args.recipients, size, args.workers)
        first = timed_run(path, args.workers)
        again = timed_run(path, args.workers)
        store_bytes = sum(p.stat().st_size for p in (Path(tmp) / "store").rglob("*") if p.is_file())
    stage_total = sum(first["stage_cpu_s"].values()) or 1
    shares = {k: round(100 * v / stage_total, 1) for k, v in first["stage_cpu_s"].items()}
    print(f"\n{args.recipients} recipients at {args.size}, {args.workers} workers, empty segment cache")
    print(f"{'run':<22}{'recipients/min':>16}{'wall s':>9}{'CPU s':>9}{'CPU s/recipient':>17}")
    for name, row in (("first (all rendered)", first), ("again (all unchanged)", again)):
        print(f"{name:<22}{row['per_minute']:>16}{row['wall_s']:>9}{row['cpu_s']:>9}{row['cpu_s_per_recipient']:>17}")
    print("share of worker CPU: " + ", ".join(f"{k} {v} %" for k, v in shares.items())
          + f"; store holds {store_bytes / 1e6:.0f} MB ({store_bytes / 1e6 / args.recipients:.2f} MB a recipient)")
    print(json.dumps({"bench": "campaign", "recipients": args.recipients, "size": args.size, "workers": args.workers,
                      "first": first, "again": again, "stage_share_pct": shares, "store_mb": round(store_bytes / 1e6, 1)}))


if __name__ == "__main__":
    main()
