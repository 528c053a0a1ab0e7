"""The service under load: ``/pay/<token>`` and ``/e/<token>`` under gunicorn and the development server.

    .venv/bin/python bench/service.py                       # dev server, gunicorn 1, 2, 4 workers
    .venv/bin/python bench/service.py --workers 2 --requests 2000 --seconds 10
    .venv/bin/python bench/service.py --busy-admin --workers 2   # the public side with the admin side idle, then busy
    .venv/bin/python bench/service.py --workers 2 --routes /e --threads 2   # beacons only

One campaign with many published recipients in a SQLite ledger, or with
``--ledger postgresql`` on a PostgreSQL server the bench starts (the demo
provider takes payments), served side by side in one run on 127.0.0.1 by
``billcast serve --dev`` and by ``billcast serve --workers N`` (gunicorn,
gthread), each logging every request as JSON to a file as in production. For
each server and route, 32 clients on keep-alive connections (asyncio, one
process) send requests back to back, bounded in count and in time:

- ``/pay/<token>?option=full&src=qr``: a recipient's first click, so each
  request looks the recipient up, opens a demo checkout session and records it
  (a ledger write), and redirects (303);
- ``/e/<token>`` with ``{"kind": "view"}``: a beacon, so each request looks
  the recipient up, counts the page's events of the last minute and records
  one (a ledger write, the rate limit in the same transaction), 204.

The clients open their connections 5 ms apart, as people's arrive, not all
in one instant: 32 connections opened at once all go to whichever gunicorn
worker wakes first (each accepts what it can), and stay there, so that one
worker served most of them and the other little (80-105% of a core against
0-20%).

Tokens are spread so that no page reaches the rate limit. Prints requests per
second, p50 and p99 latency and errors (anything but the expected status, or a
connection failure) per server and route, the CPU time the server's processes
and the client spent a request (what the throughput of a machine of one's own
would be, where this one is shared), and one JSON line with every figure.

``--busy-admin`` runs the two sides as production does, ``billcast serve --public``
and ``billcast serve --admin`` (at niceness ``--admin-nice``), and measures each
public route twice side by side: with the admin side idle, and while another
process keeps it busy with its worst requests (``bench/admin_load.py``: the
studio checking, drawing frames of and rendering the preview video of the
biggest storyboard its limits allow, and the campaign's report pages). It
prints idle and busy requests per second and p99 per route and their ratio
(the aim: busy no more than 10% below idle), also round by round: rounds go
idle-busy, busy-idle, idle-busy... so that neither state always meets the
bigger ledger, and a round's two windows are next to each other in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from billcast.demo import sample_rules  # noqa: E402
from billcast.jobs.ledger import Ledger  # noqa: E402
from billcast.jobs.links import recipient_token  # noqa: E402

CAMPAIGN = "bench-2026-11"
SECRET = b"b" * 40
CLIENTS = 32
RAMP = 0.005  # seconds between one client's first connection and the next's (see the module's text)


@contextlib.contextmanager
def ledger_url(kind: str, folder: Path) -> Iterator[str]:
    """The ledger the campaign uses: a SQLite file in ``folder`` (the demo's), or a database on a PostgreSQL
    server of its own (Debian's, started for the bench as ``tests/pg.py`` starts it for the tests)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import pg

    server = pg.start()
    try:
        with server.database() as url:
            yield url
    finally:
        server.stop()


def make_campaign(folder: Path, recipients: int, ledger_at: str) -> Path:
    """A campaign file and a ledger with ``recipients`` published recipients (no pages: these routes need none)."""
    (folder / "customers.jsonl").write_text("", encoding="utf-8")
    path = folder / "campaign.toml"
    path.write_text(f"""id = "{CAMPAIGN}"
input = "customers.jsonl"
store = "file://store"
public_url = "https://bills.bench.test"
ledger = "{ledger_at}"
out = "out"
{sample_rules()}""", encoding="utf-8")
    now = datetime.now(UTC)
    with Ledger(ledger_at) as ledger:
        ledger.ensure_campaign(CAMPAIGN, link_days=60)
        for i in range(recipients):
            ledger.record_published(campaign_id=CAMPAIGN, customer_id=f"B-{i:06d}", token=token(i),
                                    storyboard="bill_explainer", variant="", amount_due=Decimal("42.10"),
                                    currency="EUR", content_hash=f"h{i}", published_at=now,
                                    expires_at=now + timedelta(days=60))
    return path


def token(i: int) -> str:
    return recipient_token(SECRET, CAMPAIGN, f"B-{i:06d}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``billcast serve`` (gunicorn with N workers, or --dev; one side or both) in its own process group."""

    def __init__(self, campaign: Path, workers: int | None, folder: Path, threads: int, side: str = "",
                 env: dict[str, str] | None = None, cpus: str = "") -> None:
        self.port = free_port()
        self.name = ("dev server" if workers is None else f"gunicorn {workers}w{threads}t") + (f" {side}" if side else "")
        how = (["--dev"] if workers is None else ["--workers", str(workers)]) + ([f"--{side}"] if side else [])
        self.log = (folder / f"{self.name.replace(' ', '-')}.log").open("w")
        env = {**os.environ, "BILLCAST_STATE_DIR": str(folder / "state"), "BILLCAST_LOG_FORMAT": "json",
               "BILLCAST_THREADS": str(threads), **(env or {})}
        self.process = subprocess.Popen(
            [*(["taskset", "--cpu-list", cpus] if cpus else []), sys.executable, "-P", "-m", "billcast", "serve", str(campaign), "--port", str(self.port),
             "--insecure-cookies", *how], stdout=subprocess.DEVNULL, stderr=self.log, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not start")

    def cpu_seconds(self) -> float:
        """CPU time of every process of the server (its session), so far."""
        return sessions_cpu_seconds(lambda session: session == self.process.pid)

    def wait_idle(self, limit: float = 600) -> None:
        """Until the server's processes spend under a tenth of a core (what a request left running finishes)."""
        deadline = time.monotonic() + limit
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(1)
            now = self.cpu_seconds()
            if now - before < 0.1:
                return
            before = now

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def pay_request(t: str) -> bytes:
    return (f"GET /pay/{t}?option=full&src=qr HTTP/1.1\r\nHost: pay.bench.test\r\n\r\n").encode()


def beacon_request(t: str) -> bytes:
    body = b'{"kind": "view"}'
    return (f"POST /e/{t} HTTP/1.1\r\nHost: pay.bench.test\r\nContent-Type: text/plain;charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status and whether the server will close the connection; the body read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return status, headers.get("connection", "").lower() == "close"


async def _client(port: int, requests: list[bytes], expected: int, deadline: float, times: list[float],
                  errors: list[str], n: int) -> None:
    reader = writer = None
    await asyncio.sleep(n * RAMP)
    for raw in requests:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            status, close = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            writer = None
            continue
        times.append(time.perf_counter() - started)
        if status != expected:
            errors.append(str(status))
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, requests: list[bytes], expected: int, seconds: float) -> dict:
    times: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    shares = [requests[i::CLIENTS] for i in range(CLIENTS)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, share, expected, deadline, times, errors, n) for n, share in enumerate(shares)))
    elapsed = time.perf_counter() - started
    times.sort()
    done = len(times)
    return {"requests": done, "seconds": round(elapsed, 2), "rps": round(done / elapsed, 1),
            "p50_ms": round(times[done // 2] * 1000, 1) if done else None,
            "p99_ms": round(times[min(done - 1, int(done * 0.99))] * 1000, 1) if done else None,
            "errors": len(errors), "error_kinds": sorted(set(errors))[:5]}


def sessions_cpu_seconds(chosen: Callable[[int], bool]) -> float:
    """CPU time so far of every process in the sessions ``chosen`` picks by their id (its leader's pid)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if chosen(int(fields[3])):
            total += sum(int(f) for f in fields[11:15])  # utime, stime, and of its children that ended
    return total / os.sysconf("SC_CLK_TCK")


def studio_cpu_seconds() -> float:
    """CPU time so far of the studio's worker processes and what they started (each leads a session)."""
    workers = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"billcast.jobs.jail" in cmdline.read_bytes():
                workers.add(int(cmdline.parent.name))
        except OSError:
            continue
    return sessions_cpu_seconds(workers.__contains__)


def _own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def measure(server: Server, route: str, tokens: list[str], count: int, seconds: float) -> dict:
    """The route under load; with the CPU time the server and this client spent a request."""
    make, expected = (pay_request, 303) if route == "/pay" else (beacon_request, 204)
    warm = [make(t) for t in tokens[:CLIENTS * 4]]
    asyncio.run(_load(server.port, warm, expected, seconds))  # every worker and thread has run the route once
    requests = [make(tokens[(CLIENTS * 4 + i) % len(tokens)]) for i in range(count)]
    server_cpu, client_cpu = server.cpu_seconds(), _own_cpu()
    row = asyncio.run(_load(server.port, requests, expected, seconds))
    done = max(row["requests"], 1)
    row["server_cpu_ms"] = round((server.cpu_seconds() - server_cpu) / done * 1000, 3)
    row["client_cpu_ms"] = round((_own_cpu() - client_cpu) / done * 1000, 3)
    return row


def print_row(row: dict) -> None:
    print(f"  {row['server']:<14} {row['route']:<5} {row['rps']:>8.1f} req/s  p50 {row['p50_ms']:>6} ms  "
          f"p99 {row['p99_ms']:>6} ms  errors {row['errors']} {row['error_kinds'] or ''} "
          f"({row['requests']} in {row['seconds']} s; CPU a request: server "
          f"{row['server_cpu_ms']:.2f} ms, client {row['client_cpu_ms']:.2f} ms"
          + (f"; studio workers {row['studio_cpu_s']} s" if "studio_cpu_s" in row else "") + ")", flush=True)


def ratios(runs: list[dict], route: str) -> dict:
    """One route's idle and busy figures over every round (the worst round's p99), the busy/idle ratios of those,
    and each round's own ratios with their median (a round's idle and busy windows are next to each other)."""
    row: dict = {"route": route}
    for state in ("idle", "busy"):
        mine = [r for r in runs if r["route"] == route and r["state"] == state]
        done = sum(r["requests"] for r in mine)
        row[state] = {"rps": round(done / sum(r["seconds"] for r in mine), 1),
                      "p99_ms": max(r["p99_ms"] for r in mine), "errors": sum(r["errors"] for r in mine)}
    row["rps_ratio"] = round(row["busy"]["rps"] / row["idle"]["rps"], 3)
    row["p99_ratio"] = round(row["busy"]["p99_ms"] / row["idle"]["p99_ms"], 3)
    idle = [r for r in runs if r["route"] == route and r["state"] == "idle"]
    busy = [r for r in runs if r["route"] == route and r["state"] == "busy"]
    row["rounds"] = [{"rps_ratio": round(b["rps"] / a["rps"], 3), "p99_ratio": round(b["p99_ms"] / a["p99_ms"], 3)}
                     for a, b in zip(idle, busy, strict=True)]
    for key in ("rps_ratio", "p99_ratio"):
        row[f"median_{key}"] = statistics.median(r[key] for r in row["rounds"])
    by_round = {key: " ".join(f"x{r[key]:.2f}" for r in row["rounds"]) for key in ("rps_ratio", "p99_ratio")}
    print(f"  {route:<5} idle {row['idle']['rps']:.1f} req/s p99 {row['idle']['p99_ms']} ms; busy "
          f"{row['busy']['rps']:.1f} req/s p99 {row['busy']['p99_ms']} ms; busy/idle: req/s "
          f"x{row['rps_ratio']:.3f}, p99 x{row['p99_ratio']:.3f}; by round: req/s {by_round['rps_ratio']} "
          f"(median x{row['median_rps_ratio']:.3f}), p99 {by_round['p99_ratio']} "
          f"(median x{row['median_p99_ratio']:.3f})", flush=True)
    return row


def busy_admin(args: argparse.Namespace, folder: Path, workers: int, routes: list[str], ledger_at: str) -> dict:
    """Each public route with the admin side idle and busy (one load across the routes), side by side, for
    ``--rounds`` rounds, alternately idle first and busy first; the figures and the busy/idle ratios."""
    from admin_load import ADMIN_TOKEN, AdminLoad

    per_route = args.requests + CLIENTS * 4
    tokens = [token(i) for i in range(per_route * 2 * args.rounds)]
    campaign = make_campaign(folder, len(tokens), ledger_at)
    public = Server(campaign, workers, folder, args.threads, "public", {"BILLCAST_ADMIN_TOKEN": ""},
                    args.public_cpus)
    admin = Server(campaign, args.admin_workers, folder, args.threads, "admin",
                   {"BILLCAST_ADMIN_TOKEN": ADMIN_TOKEN, "BILLCAST_ADMIN_NICE": str(args.admin_nice),
                    "BILLCAST_STUDIO_CACHE": str(folder / "studio-cache"),
                    **({} if args.studio_yield is None else {"BILLCAST_STUDIO_YIELD_PERCENT": str(args.studio_yield)})},
                   args.admin_cpus)
    runs: list[dict] = []
    loads: list[dict] = []
    try:
        for n in range(args.rounds * 2):
            state = ("idle", "busy", "busy", "idle")[n % 4]  # ABBA: neither state always on the older ledger
            mine = tokens[n * per_route:(n + 1) * per_route]  # first clicks only; beacons spread over everyone
            if state == "busy":
                load = AdminLoad(admin.port, CAMPAIGN, clients=args.admin_clients, kinds=args.admin_load,
                                 cpus=args.admin_cpus)
                load.start()
                admin_cpu = admin.cpu_seconds()
            for route, route_tokens in (("/pay", mine), ("/e", tokens[n::args.rounds * 2])):
                if route not in routes:
                    continue
                studio_cpu = studio_cpu_seconds()
                row = {"server": f"public, admin {state}", "route": route, "state": state,
                       **measure(public, route, route_tokens, args.requests, args.seconds),
                       "studio_cpu_s": round(studio_cpu_seconds() - studio_cpu, 2)}
                runs.append(row)
                print_row(row)
            if state == "busy":
                summary = {**load.stop(), "admin_cpu_s": round(admin.cpu_seconds() - admin_cpu, 1)}
                loads.append(summary)
                print(f"    the admin side meanwhile: {summary}", flush=True)
                admin.wait_idle()
    finally:
        public.stop()
        admin.stop()
    rows = [ratios(runs, route) for route in ("/pay", "/e") if any(r["route"] == route for r in runs)]
    return {"bench": "service-busy-admin", "cores": os.cpu_count(), "clients": CLIENTS, "public_workers": workers,
            "admin_workers": args.admin_workers, "admin_nice": args.admin_nice, "threads": args.threads,
            "admin_load_kinds": args.admin_load, "rounds": args.rounds, "ledger": args.ledger, "rows": rows, "runs": runs, "admin_load": loads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", default="dev,1,2,4", help="servers to run: dev and/or gunicorn worker counts")
    ap.add_argument("--requests", type=int, default=4000, help="requests per server and route (at most)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time per server and route (at most)")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (BILLCAST_THREADS)")
    ap.add_argument("--busy-admin", action="store_true",
                    help="the public side (--workers N, one count) with the admin side idle, then busy")
    ap.add_argument("--admin-workers", type=int, default=1, help="--busy-admin: the admin side's workers")
    ap.add_argument("--admin-nice", type=int, default=10, help="--busy-admin: the admin side's niceness")
    ap.add_argument("--admin-clients", type=int, default=4, help="--busy-admin: clients keeping the admin side busy")
    ap.add_argument("--admin-load", default="studio,reports,renders",
                    help="--busy-admin: what keeps the admin side busy (studio checks and frames, report pages, "
                         "preview renders; or floor: a SCHED_IDLE busy loop per CPU, and no admin requests)")
    ap.add_argument("--public-cpus", default="", help="--busy-admin: the CPUs of the public side (taskset's list)")
    ap.add_argument("--admin-cpus", default="",
                    help="--busy-admin: the CPUs of the admin side, its studio and the admin load (taskset's list)")
    ap.add_argument("--studio-yield", type=int, default=None,
                    help="--busy-admin: the admin side's studio_yield_percent (0: the studio never stops)")
    ap.add_argument("--rounds", type=int, default=1, help="--busy-admin: idle and busy, this many times (ABBA order)")
    ap.add_argument("--routes", default="/pay,/e", help="routes to load: /pay and/or /e")
    ap.add_argument("--ledger", choices=("sqlite", "postgresql"), default="sqlite",
                    help="the campaign's ledger: a SQLite file (the demo's) or PostgreSQL (production's; Debian's "
                         "server, started for the bench with durability off, as for the tests)")
    args = ap.parse_args()
    routes = [r for r in ("/pay", "/e") if r in args.routes.split(",")]
    if args.busy_admin:
        with tempfile.TemporaryDirectory(prefix="billcast-bench-service-") as tmp, \
                ledger_url(args.ledger, Path(tmp)) as ledger_at:
            print(f"{CLIENTS} clients on the public side, at most {args.requests} requests or {args.seconds:g} s "
                  f"per route and state, on {os.cpu_count()} cores, {args.ledger} ledger", flush=True)
            print(json.dumps(busy_admin(args, Path(tmp), int(args.workers.split(",")[0]), routes, ledger_at)))
        return
    configs = [None if w == "dev" else int(w) for w in args.workers.split(",")]
    per_server = args.requests + CLIENTS * 4
    rows = []
    with tempfile.TemporaryDirectory(prefix="billcast-bench-service-") as tmp, \
            ledger_url(args.ledger, Path(tmp)) as ledger_at:
        folder = Path(tmp)
        started = time.perf_counter()
        campaign = make_campaign(folder, per_server * len(configs), ledger_at)
        print(f"{per_server * len(configs)} recipients in the ledger in {time.perf_counter() - started:.0f} s; "
              f"{CLIENTS} clients, at most {args.requests} requests or {args.seconds:g} s per server and route, "
              f"on {os.cpu_count()} cores", flush=True)
        for n, workers in enumerate(configs):
            server = Server(campaign, workers, folder, args.threads)
            try:
                mine = [token(i) for i in range(n * per_server, (n + 1) * per_server)]  # first clicks only
                everyone = [token(i) for i in range(per_server * len(configs))]
                for route, tokens in (("/pay", mine), ("/e", everyone[n::len(configs)])):
                    if route not in routes:
                        continue
                    row = {"server": server.name, "route": route, **measure(server, route, tokens, args.requests,
                                                                            args.seconds)}
                    rows.append(row)
                    print_row(row)
            finally:
                server.stop()
    print(json.dumps({"bench": "service", "cores": os.cpu_count(), "clients": CLIENTS, "rows": rows}))


if __name__ == "__main__":
    main()
