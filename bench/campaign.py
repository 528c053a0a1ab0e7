"""Campaign throughput: recipients per minute end to end, where the time goes, and how it scales.

    .venv/bin/python bench/campaign.py                  # 200 recipients, 1280x720, 2 workers
    .venv/bin/python bench/campaign.py --recipients 40 --size 640x360
    .venv/bin/python bench/campaign.py --scaling --recipients 48 --size 640x360
    .venv/bin/python bench/campaign.py --driver 100000,1000000
    .venv/bin/python bench/campaign.py --chunks 1,4,8,16 --recipients 4000

A fresh campaign of N distinct recipients (the sample records, each copy with
its own id, name, amounts and usage; debtors and bill payers in the samples'
proportions, so all four storyboards and both A/B variants run) goes through
``billcast run`` from an empty segment cache into a folder store and a SQLite
ledger, all in a temporary folder. Then the same campaign again, unchanged, to
show what a resumed or repeated run costs. Prints a table and one JSON line.

``--scaling`` instead runs the campaign side by side from the same warm
segment cache, with warm workers (each has rendered a few recipients): a local
pool of 1 and of 2 workers, and a Dask cluster on this machine (scheduler and
single-threaded worker processes on 127.0.0.1, Dask's statistical profiler
off) with 1 and with 2 workers, then 2 with the profiler on; it prints
recipients per minute and the speed-up of 2 workers over 1 (ideal 2.0x).

``--driver N,...`` measures the driver alone: N synthetic records streamed
from disk through the whole driver (validation, rules, tokens, hashes, ledger
reads and writes, manifest) to a fake worker that publishes nothing, each size
in a fresh process, and prints its peak RSS: flat memory means the same peak
for 100k and 1M records. ``jobs/record_files.py``'s duplicate check (a dict
of every customer_id seen) is measured on its own beside it.

``--chunks 1,4,8,16`` measures what a Dask task costs: the same fake workers
on a local Dask cluster, for each number of recipients a task.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from billcast.jobs.campaign import load_campaign  # noqa: E402
from billcast.demo import sample_rules  # noqa: E402
from billcast.jobs.run import run_campaign  # noqa: E402

SECRET = b"bench-secret-" + b"x" * 32


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cents(value: str | float, k: int) -> str:
    return str(Decimal(str(value)) + Decimal(k) / 100)


def recipients(count: int) -> list[dict]:
    """``count`` distinct records made from the samples: ids, names, amounts and usage moved a little."""
    return list(iter_recipients(count))


def iter_recipients(count: int) -> Iterator[dict]:
    """The records of :func:`recipients`, one at a time (a million of them never sit in memory)."""
    samples = [json.loads(line) for line in (ROOT / "examples" / "customers.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
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
        yield record


def write_campaign(folder: Path, count: int, size: tuple[int, int], workers: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "customers.jsonl").open("w", encoding="utf-8") as f:
        for record in iter_recipients(count):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
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

{sample_rules()}""", encoding="utf-8")
    return folder / "campaign.toml"


def timed_run(path: Path, workers: int, executor: str = "local", chunk: int | None = None) -> dict:
    campaign = load_campaign(path)
    cpu, wall = cpu_seconds(), time.monotonic()
    counts = run_campaign(campaign, secret=SECRET, workers=workers, executor=executor, chunk=chunk,
                          log=lambda text: print(text, file=sys.stderr))
    wall, cpu = time.monotonic() - wall, cpu_seconds() - cpu
    total = counts.published + counts.unchanged
    stages = {k: round(v, 1) for k, v in counts.seconds.items()}
    return {"recipients": total, "published": counts.published, "unchanged": counts.unchanged,
            "failed": counts.failed + counts.refused, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "per_minute": round(total / wall * 60, 1), "cpu_s_per_recipient": round(cpu / max(total, 1), 2),
            "stage_cpu_s": stages, "chunk": counts.chunk}


def throughput(args: argparse.Namespace, size: tuple[int, int]) -> None:
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


# --- scaling: 1 and 2 workers, local pool and Dask, side by side ----------------------------------------

def _fresh(tmp: Path, name: str, count: int, size: tuple[int, int], workers: int, warm: Path) -> Path:
    """A campaign folder of its own (store, ledger, out) starting from a copy of the warm segment cache."""
    path = write_campaign(tmp / name, count, size, workers)
    shutil.copytree(warm, tmp / name / "cache")
    return path


def _warm_worker() -> None:
    from billcast.jobs.run import _own_code

    _own_code()


def _dask_run(tmp: Path, name: str, count: int, size: tuple[int, int], workers: int, warm: Path,
              profile: bool = False) -> dict:
    """A fresh cluster of ``workers`` single-threaded processes, warmed by a few recipients, then the measured run."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": profile}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               memory_limit=0, local_directory=str(tmp / "dask"))
    try:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
            client.run(_warm_worker)
        # Every worker renders a few recipients first, as the forked local pool inherits a warmed process.
        timed_run(_fresh(tmp, name + "-warmup", 16 * workers, size, workers, warm), workers,
                  executor=cluster.scheduler_address, chunk=1)
        return timed_run(_fresh(tmp, name, count, size, workers, warm), workers, executor=cluster.scheduler_address)
    finally:
        cluster.close()


def scaling(args: argparse.Namespace, size: tuple[int, int]) -> None:
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="billcast-scale-") as tmp_name:
        tmp = Path(tmp_name)
        # Warm the cache once (intro per language, sound, repeated frames) so every measured run starts equal;
        # this process renders them, so the local pool's forked workers start warm too.
        warmup = write_campaign(tmp / "warmup", 15, size, 1)
        timed_run(warmup, 1)
        warm = tmp / "warmup" / "cache"
        for name, workers in (("local1", 1), ("local2", 2), ("dask1", 1), ("dask2", 2), ("dask2-profiler", 2)):
            if name.startswith("dask"):
                rows[name] = _dask_run(tmp, name, args.recipients, size, workers, warm,
                                       profile=name.endswith("profiler"))
            else:
                rows[name] = timed_run(_fresh(tmp, name, args.recipients, size, workers, warm), workers)
            print(f"{name}: {rows[name]['per_minute']} recipients/min", file=sys.stderr)
    print(f"\n{args.recipients} recipients at {args.size}, warm segment cache and warm workers, "
          f"{os.cpu_count()} cores")
    print(f"{'executor':<10}{'1 worker rcpt/min':>19}{'2 workers rcpt/min':>20}{'speed-up (ideal 2.0x)':>23}")
    result = {}
    for kind in ("local", "dask"):
        one, two = rows[f"{kind}1"]["per_minute"], rows[f"{kind}2"]["per_minute"]
        result[kind] = {"one": one, "two": two, "speedup": round(two / one, 2)}
        print(f"{kind:<10}{one:>19}{two:>20}{two / one:>22.2f}x")
    print(f"dask, 2 workers with Dask's profiler on (its default): {rows['dask2-profiler']['per_minute']} "
          f"recipients/min")
    print(f"CPU s a recipient (local pool, 1 worker): {rows['local1']['cpu_s_per_recipient']}")
    print(json.dumps({"bench": "campaign-scaling", "recipients": args.recipients, "size": args.size,
                      "cores": os.cpu_count(), "result": result, "runs": rows}))


# --- the driver alone: memory over 100k-1M records ------------------------------------------------------

def fake_chunk(settings, tasks):
    """A worker that publishes nothing and takes no time: only the driver is measured."""
    from billcast.jobs.run import Outcome

    return [Outcome(t.record.customer_id, "published", thumb_size=(160, 90), qr=b"") for t in tasks]


class StubLedger:
    """A ledger that keeps nothing, for --ledger stub: the driver's own memory and speed, without SQL's cost."""

    def __init__(self, url: str) -> None:
        self.rows = 0

    def ensure_campaign(self, *args, **kwargs) -> None:
        pass

    def counts(self, campaign_id: str) -> dict[str, int]:
        return {"pending": 0, "published": 0, "expired": 0}

    def recipient(self, campaign_id: str, customer_id: str):
        return None

    def contact_state(self, customer_id: str, channel: str, **_kwargs):
        from billcast.jobs.ledger import ContactState

        return ContactState(None, None, ())

    def record_published(self, **row) -> None:
        self.rows += 1

    def close(self) -> None:
        pass


def _rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def driver_one(count: int, workers: int, ledger: str, executor: str = "local", chunk: int | None = None,
               duplicates: bool = True) -> dict:
    """One driver run over ``count`` records, in this (fresh) process; RSS sampled as it goes."""
    import threading

    if not duplicates:  # diagnosis only: what the driver holds without record_files' dict of every id seen
        import billcast.jobs.record_files

        billcast.jobs.record_files._duplicate = lambda *args: []  # type: ignore[assignment]

    if ledger == "stub":
        import billcast.jobs.run.driver

        # This process only: it exists for this one run.
        billcast.jobs.run.driver.Ledger = StubLedger  # type: ignore[misc]

    with tempfile.TemporaryDirectory(prefix="billcast-driver-") as tmp:
        written = time.monotonic()
        path = write_campaign(Path(tmp), count, (160, 90), workers)
        written = time.monotonic() - written
        campaign = load_campaign(path)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        start_rss = _rss_kb()

        def sample() -> None:
            began = time.monotonic()
            while not stop.wait(0.5):
                samples.append((time.monotonic() - began, _rss_kb()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        wall = time.monotonic()
        counts = run_campaign(campaign, secret=SECRET, workers=workers, work_fn=fake_chunk, local_files=False,
                              executor=executor, chunk=chunk)
        wall = time.monotonic() - wall
        stop.set()
        sampler.join()
        input_mb = (Path(tmp) / "customers.jsonl").stat().st_size / 1e6
    quarter = [samples[min(int(len(samples) * q), len(samples) - 1)][1] // 1024 for q in (0.25, 0.5, 0.75, 1.0)] \
        if samples else []
    return {"records": count, "ledger": ledger, "duplicate_check": duplicates, "published": counts.published, "wall_s": round(wall, 1),
            "records_per_s": round(count / wall), "input_mb": round(input_mb), "write_input_s": round(written, 1),
            "rss_start_mb": start_rss // 1024, "rss_quartiles_mb": quarter, "peak_rss_mb": _rss_kb("VmHWM") // 1024,
            "chunk": counts.chunk}


def seen_dict_mb(count: int) -> float:
    """What ``record_files``' duplicate check holds after ``count`` records: {customer_id: line}, measured."""
    import tracemalloc

    samples = [json.loads(line)["customer_id"] for line in
               (ROOT / "examples" / "customers.jsonl").read_text("utf-8").splitlines() if line.strip()]
    ids = (f"{samples[i % len(samples)]}-{i + 1}" for i in range(count))  # as iter_recipients names them
    tracemalloc.start()
    seen = {customer_id: 1000 + line for line, customer_id in enumerate(ids)}
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del seen
    return round(size / 1e6, 1)


def driver(args: argparse.Namespace) -> None:
    import subprocess

    rows = []
    for count in (int(n) for n in args.driver.split(",")):
        out = subprocess.run([sys.executable, __file__, "--driver-one", str(count), "--workers", str(args.workers),
                              "--ledger", args.ledger] + (["--no-duplicate-check"] if args.no_duplicate_check else []),
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["seen_dict_mb"] = seen_dict_mb(count) if not args.no_duplicate_check else 0.0
        rows.append(row)
        print(f"{count} records: peak RSS {row['peak_rss_mb']} MB, {row['records_per_s']} records/s", file=sys.stderr)
    print(f"\nthe driver alone, fake workers ({args.workers} processes), records streamed from disk, "
          f"{args.ledger} ledger" + (", record_files' duplicate check off" if args.no_duplicate_check else ""))
    print(f"{'records':>9}{'input MB':>10}{'records/s':>11}{'RSS at 25/50/75/100 % MB':>28}{'peak RSS MB':>13}"
          f"{'of it: seen ids MB':>20}")
    for r in rows:
        print(f"{r['records']:>9}{r['input_mb']:>10}{r['records_per_s']:>11}"
              f"{'/'.join(map(str, r['rss_quartiles_mb'])):>28}{r['peak_rss_mb']:>13}{r['seen_dict_mb']:>20}")
    print(json.dumps({"bench": "campaign-driver", "workers": args.workers, "ledger": args.ledger, "rows": rows}))


def chunks(args: argparse.Namespace) -> None:
    """What a task costs on Dask: the driver and fake workers over a local cluster, per chunk size."""
    import dask
    from distributed import LocalCluster

    import billcast.jobs.run.driver

    # Only Dask's and the driver's own costs are measured.
    billcast.jobs.run.driver.Ledger = StubLedger  # type: ignore[misc]
    rows = []
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               memory_limit=0)
    try:
        for size in (int(n) for n in args.chunks.split(",")):
            row = driver_one(args.recipients, args.workers, "stub", cluster.scheduler_address, size)
            rows.append({"chunk": size, "records_per_s": row["records_per_s"], "wall_s": row["wall_s"]})
            print(f"chunk {size}: {row['records_per_s']} records/s", file=sys.stderr)
    finally:
        cluster.close()
    print(f"\n{args.recipients} records, fake workers on a local Dask cluster of {args.workers}, stub ledger")
    print(f"{'recipients a task':>18}{'records/s':>11}{'ms a task':>11}")
    for r in rows:
        print(f"{r['chunk']:>18}{r['records_per_s']:>11}{1000 * r['chunk'] / r['records_per_s']:>11.2f}")
    print(json.dumps({"bench": "campaign-chunks", "records": args.recipients, "workers": args.workers, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=200)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scaling", action="store_true", help="1 and 2 workers, local pool and Dask, side by side")
    parser.add_argument("--driver", metavar="N,N",
                        help="the driver alone over N synthetic records, e.g. 100000,1000000")
    parser.add_argument("--ledger", choices=("sqlite", "stub"), default="sqlite",
                        help="with --driver: the campaign's SQLite ledger, or a stub that keeps nothing (1M records "
                             "in minutes rather than hours: SQL costs about 1-4 ms a row)")
    parser.add_argument("--chunks", metavar="N,N",
                        help="Dask's cost per task: --recipients fake recipients over a local cluster per chunk size")
    parser.add_argument("--no-duplicate-check", action="store_true",
                        help="with --driver: diagnosis, replace record_files' duplicate check (a dict of every id "
                             "seen) by nothing, to see what the driver itself holds")
    parser.add_argument("--driver-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.driver_one:
        print(json.dumps(driver_one(args.driver_one, args.workers, args.ledger,
                                    duplicates=not args.no_duplicate_check)))
    elif args.driver:
        driver(args)
    elif args.chunks:
        chunks(args)
    elif args.scaling:
        scaling(args, size)
    else:
        throughput(args, size)


if __name__ == "__main__":
    main()
