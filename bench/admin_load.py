"""Keeps the admin side busy with its worst requests, in a process of its own, for ``bench/service.py --busy-admin``.

Signed in with the admin token (a bearer header, and the session cookie the
studio's CSRF token lives in), ``clients`` threads send, back to back until
stopped:

- the studio's check of the biggest storyboard its limits allow (the shipped
  ``bill_explainer`` with its scenes repeated up to 50 scenes or 180 seconds),
  a frame of it at a random time, both with a colour changed on every request
  so that no cache answers;
- the campaign's report page and its reconciliation CSV;

and one more client renders the storyboard's preview video again and again
(each with another colour, so no segment is reused), waiting for each render
to finish before asking for the next. After a 503 a client asks again when
its ``Retry-After`` says, as the editor does. What was asked and answered is
counted. The texts are written once; each request only changes a colour, so
that the load's own CPU time (``client_cpu_s``) stays a small part of a second.

``floor`` asks the admin side nothing: it runs one busy loop per CPU under
``SCHED_IDLE``, which shares nothing with the service and which the kernel takes
the CPU from at once whenever a public thread wakes. What the public side still
loses to it is what this machine costs for any work beside it.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import multiprocessing
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

from billcast.jobs.priority import only_when_idle
from billcast.renderer import parse_storyboard

ADMIN_TOKEN = "bench-admin-token-0123456789-abcdefghij"
STORYBOARD = Path(__file__).resolve().parents[1] / "storyboards" / "bill_explainer.yaml"
MAX_SCENES, MAX_DURATION = 50, 180.0  # renderer/storyboard.py's limits


def biggest_storyboard() -> dict:
    """bill_explainer with its scenes repeated while the limits allow (each copy with its own id)."""
    data = yaml.safe_load(STORYBOARD.read_text(encoding="utf-8"))
    scenes, originals, total, n = [], data["scenes"], 0.0, 0
    while len(scenes) < MAX_SCENES:
        scene = copy.deepcopy(originals[n % len(originals)])
        if total + float(scene["duration"]) > MAX_DURATION:
            break
        scene["id"] = f"{scene['id']}_{n}"
        scenes.append(scene)
        total += float(scene["duration"])
        n += 1
    data["scenes"] = scenes
    data.pop("poster_time", None)
    return data


class Texts:
    """The storyboard's text with its teal turned a little for each ``n``, so that the text and every scene's
    content differ each time: written once, then only the colour is replaced (the load's own CPU stays small)."""

    def __init__(self, data: dict) -> None:
        changed = {**data, "colors": {**data["colors"], "teal": "#0E4D00"}}
        self.template = yaml.safe_dump(changed, allow_unicode=True, sort_keys=False)
        assert self.template.count("#0E4D00") == 1

    def __call__(self, n: int) -> str:
        return self.template.replace("#0E4D00", f"#0E4D{n % 256:02X}")


def pause_on_busy(status: int, headers: dict[str, str], stop: threading.Event) -> None:
    """As the editor does: after a 503, ask again when its ``Retry-After`` says (at most 5 s)."""
    if status == 503:
        stop.wait(min(5.0, float(headers.get("retry-after", "2"))))


class _Client:
    """One signed-in connection to the admin side."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        status, headers, page = self.send("GET", "/studio/bill_explainer")
        assert status == 200, status
        self.cookie = headers["set-cookie"].split(";")[0]
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        self.customer = re.search(r'<option value="(s[0-9a-f]+)"[^>]*>Maria', page).group(1)

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = dict(self.bearer)
        if hasattr(self, "cookie"):
            headers |= {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode(
                "utf-8", "replace")
        finally:
            conn.close()

    def studio(self, what: str, text: str, **extra: object) -> tuple[int, dict[str, str], str]:
        return self.send("POST", f"/studio/bill_explainer/{what}", {"text": text, "customer": self.customer, **extra})


def _requests(port: int, campaign: str, texts: Texts, stop: threading.Event, seen: Counter, seed: int,
              kinds: frozenset[str]) -> None:
    client = _Client(port)
    rng = random.Random(seed)
    n = seed * 100_000
    while not stop.is_set():
        n += 1
        text = texts(n)
        for kind, ask in (("validate", lambda: client.studio("validate", text)),
                          ("frame", lambda: client.studio("frame", text, t=rng.uniform(0, MAX_DURATION))),
                          ("report", lambda: client.send("GET", f"/reports/{campaign}")),
                          ("reconciliation", lambda: client.send("GET", f"/reports/{campaign}/reconciliation.csv"))):
            if kind not in kinds:
                continue
            if stop.is_set():
                break
            status, headers, _ = ask()
            seen[f"{kind} {status}"] += 1
            pause_on_busy(status, headers, stop)


def _videos(port: int, texts: Texts, stop: threading.Event, seen: Counter) -> None:
    client = _Client(port)
    n = 0
    while not stop.is_set():
        n += 1
        status, headers, body = client.studio("video", texts(7_000_000 + n))
        if status != 202:
            seen[f"video {status}"] += 1
            pause_on_busy(status, headers, stop)
            continue
        seen["video started"] += 1
        job = json.loads(body)["job"]
        while not stop.is_set():
            status, _, body = client.send("GET", f"/studio/bill_explainer/video/{job}")
            state = json.loads(body).get("status") if status == 200 else str(status)
            if state != "rendering":
                seen[f"video {state}"] += 1
                break
            time.sleep(0.5)


SPIN = "from billcast.jobs.priority import only_when_idle\nonly_when_idle()\nwhile True:\n    pass\n"


def _floor() -> list[subprocess.Popen]:
    """One busy loop per CPU it may use, under SCHED_IDLE: work at the lowest priority the kernel has, sharing nothing with
    the service (no ledger, no files, no admin side). What the public side loses to it is what this machine
    costs for any work at all beside it: the floor under what the admin side's own work can cost."""
    return [subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)  # its group lowered too,
            for _ in os.sched_getaffinity(0)]  # as the studio's worker's is; one per CPU it may use


KINDS = {"studio": ("validate", "frame"), "reports": ("report", "reconciliation"), "renders": (), "floor": (), "none": ()}


def _run(port: int, campaign: str, clients: int, kinds: str, stop: multiprocessing.synchronize.Event,
         started: multiprocessing.synchronize.Event, out: multiprocessing.Queue, cpus: str) -> None:
    if cpus:  # taskset's list: "1", "2-3", "0,2"
        os.sched_setaffinity(0, {n for part in cpus.split(",") for n in _span(part)})
    os.setsid()  # a session of its own, so that its scheduler group (autogroup) yields too, not only itself:
    only_when_idle()  # it stands for people's browsers elsewhere, so its own CPU must not be what the public side meets
    data = biggest_storyboard()
    texts = Texts(data)
    parse_storyboard(texts(0))  # within every limit, or the bench says so now
    halt, seen = threading.Event(), Counter()
    chosen = kinds.split(",")
    unknown = [kind for kind in chosen if kind not in KINDS]
    if unknown:
        raise SystemExit(f"--admin-load: {unknown[0]!r} is not one of {', '.join(KINDS)}")
    asks = frozenset(ask for kind in chosen for ask in KINDS[kind])
    threads = [threading.Thread(target=_requests, args=(port, campaign, texts, halt, seen, i, asks))
               for i in range(clients if asks else 0)]
    if "renders" in chosen:
        threads.append(threading.Thread(target=_videos, args=(port, texts, halt, seen)))
    began, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    loops = _floor() if "floor" in chosen else []
    started.set()
    stop.wait()
    halt.set()
    for loop in loops:
        loop.kill()
        loop.wait()
    for thread in threads:
        thread.join()
    out.put({"seconds": round(time.perf_counter() - began, 1), "client_cpu_s": round(time.process_time() - cpu, 1),
             "scenes": len(data["scenes"]),
             "storyboard_kb": round(len(texts(0).encode()) / 1024), "answered": dict(sorted(seen.items()))})


def _span(part: str) -> range:
    first, _, last = part.partition("-")
    return range(int(first), int(last or first) + 1)


class AdminLoad:
    """The load, started and stopped around one measurement; ``stop`` returns what it asked and was answered."""

    def __init__(self, port: int, campaign: str, clients: int = 4, kinds: str = ",".join(KINDS),
                 cpus: str = "") -> None:
        context = multiprocessing.get_context("fork")
        self._stop, self._started, self._out = context.Event(), context.Event(), context.Queue()
        self._process = context.Process(target=_run, args=(port, campaign, clients, kinds, self._stop,
                                                            self._started, self._out, cpus), daemon=True)

    def start(self) -> None:
        self._process.start()
        self._started.wait(60)
        time.sleep(2)  # the first checks under way before the public side is measured

    def stop(self) -> dict:
        self._stop.set()
        summary = self._out.get(timeout=600)
        self._process.join(60)
        return summary
