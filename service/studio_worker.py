"""The studio's worker processes, as the service sees them: a small pool that checks and draws, one that
renders preview videos, each with a bounded queue, and the preview videos' status kept on disk.

Every check, frame and render runs in a :class:`billcast.jobs.jail.Jail` (CPU time, memory, wall clock,
the lowest priority, stopped while other work keeps the host busy, gone with the service). At most
``workers`` jobs run at once per service process and at most ``queue`` wait; one more is :class:`Busy`
(the studio answers 503 with ``Retry-After``). A job that hits a limit, or whose worker dies, is a
problem in the editor's list; the worker is started again for the next job.

A preview video's status and files live in the segment cache's folder (``.previews/<job>/``), so any
service process can answer for a render another started. A pasted record's video is never written:
it stays in the memory of the process that rendered it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from billcast.jobs.jail import Jail, LimitHit, Limits
from billcast.jobs.storyboard_check import Problem

from .studio_check import problem_json
from .studio_files import write_atomically
from .studio_tasks import FILES, Task

log = logging.getLogger("billcast.service")
JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
HANDLER = "billcast.service.studio_tasks:handle"
PREVIEWS = ".previews"  # inside the segment cache's folder; the cache's eviction looks only at its own files
KEEP_JOBS = 12
HITS_KEPT = 64
STALE_GRACE = 30.0  # seconds past a render's deadline before a status left "rendering" is called failed


class Busy(Exception):
    """Every worker is busy and the queue is full: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the studio is busy")
        self.retry_after = retry_after


def limit_problem(hit: LimitHit, doing: str, limits: Limits) -> dict[str, Any]:
    """A job that did not finish, as a problem the editor lists like any other."""
    if hit.kind == "time":
        message = f"{doing} took longer than {limits.wall_seconds:g} s: simplify the template or the scenes"
    elif hit.kind == "memory":
        message = f"{doing} used more than {limits.memory_mb} MB of memory: simplify the template or the scenes"
    elif hit.kind == "busy":
        message = (f"{doing} waited {hit.detail} for the public side, which kept the server busy: "
                   "try again when it is quieter")
    elif hit.kind == "error":
        message = f"{doing} failed inside the studio's worker ({hit.detail}): try again, or simplify the storyboard"
    else:
        message = f"{doing} stopped: its worker process ended unexpectedly and was started again; try again"
    return problem_json(Problem(text=f"storyboard: {message}", line=None, field="storyboard", message=message))


class Pool:
    """``size`` workers; a job takes the one its ``prefer`` names when free (where its check is cached)."""

    def __init__(self, size: int, queue: int, memory_mb: int, yield_percent: int = 0) -> None:
        self._jails = [Jail(HANDLER, memory_mb, yield_percent / 100) for _ in range(size)]
        self._free = set(range(size))
        self.queue = queue
        self._waiting = 0
        self._cond = threading.Condition()
        self.hits: OrderedDict[tuple, LimitHit] = OrderedDict()  # texts that ran out of time or memory
        self.lock = threading.Lock()

    def enter(self, retry_after: int) -> None:
        """Join the queue, or :class:`Busy` when every worker is busy and ``queue`` jobs already wait."""
        with self._cond:
            if not self._free and self._waiting >= self.queue:
                raise Busy(retry_after)
            self._waiting += 1

    def run(self, task: Task, limits: Limits, prefer: int, wait: float) -> tuple[Any, bytes]:
        """After :meth:`enter`: wait at most ``wait`` seconds for a worker (else :class:`Busy`), then run."""
        with self._cond:
            try:
                if not self._cond.wait_for(lambda: self._free, timeout=wait):
                    raise Busy(max(1, round(limits.wall_seconds)))
            finally:
                self._waiting -= 1
            index = prefer % len(self._jails)
            index = index if index in self._free else min(self._free)
            self._free.remove(index)
        try:
            return self._jails[index].run(task, limits)
        finally:
            with self._cond:
                self._free.add(index)
                self._cond.notify()

    def longest(self, limits: Limits) -> float:
        """The most seconds a job within ``limits`` can take here: its own, and the time it may be stopped."""
        return limits.wall_seconds + self._jails[0].stoppable(limits)

    def warm(self) -> None:
        """Start the idle workers that are not running yet (an editor page was opened: checks will follow)."""
        with self._cond:
            for index in self._free:
                self._jails[index].warm()

    def running(self) -> int:
        """How many jobs are running now."""
        with self._cond:
            return len(self._jails) - len(self._free)

    def pids(self) -> list[int]:
        """The worker processes running now (a worker starts at its first job)."""
        return [jail.pid for jail in self._jails if jail.pid is not None]

    def checks_made(self) -> int:
        """How many checks the running workers made (not found in their caches): the slider's cost."""
        stats = Task(op="stats", key=(), name="", text="", sample=None, language="", links={})
        limits = Limits(cpu_seconds=5, wall_seconds=5, memory_mb=0)
        total = 0
        for index in range(len(self._jails)):
            if self._jails[index].pid is not None:
                self.enter(1)
                total += self.run(stats, limits, index, 5)[0]["json"]["checks"]
        return total

    def close(self) -> None:
        for jail in self._jails:
            jail.close()


class Renders:
    """Preview renders, one at a time per process; status and files on disk (a pasted record's: in memory)."""

    def __init__(self, queue: int, memory_mb: int, yield_percent: int = 0) -> None:
        self.pool = Pool(1, queue, memory_mb, yield_percent)
        self._kept: OrderedDict[str, tuple[dict[str, Any], dict[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def job_id(key: tuple) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(repr(key).encode()).digest()[:16]).decode().rstrip("=")

    def start(self, task: Task, limits: Limits, root: Path | None, size: list[int], duration: float) -> dict[str, Any]:
        """The status of a render of ``task`` (started now, or the one already made or running); ``root`` None
        keeps it in memory (a pasted record)."""
        job = self.job_id(task.key) if root is not None else None
        if job is not None and root is not None:
            found = self.status(job, root)
            if found is not None and found["status"] != "failed":
                return found
        else:
            with self._lock:
                job = next((j for j, (s, _) in self._kept.items() if s["key"] == task.key
                            and s["status"] != "failed"), None)
                if job is not None:
                    return self._kept[job][0]
                job = secrets.token_urlsafe(16)
        self.pool.enter(max(1, round(limits.wall_seconds / 4)))
        now = time.time()
        status = {"job": job, "name": task.name, "status": "rendering", "started": now, "finished": None,
                  "error": None, "size": size, "duration": duration,
                  "deadline": now + (self.pool.queue + 1) * self.pool.longest(limits) + STALE_GRACE}
        if root is None:
            status["key"] = task.key
            with self._lock:
                self._kept[job] = (status, {})
                while len(self._kept) > KEEP_JOBS // 2:
                    self._kept.popitem(last=False)
        else:
            _prune(root / PREVIEWS)
            _write_status(root / PREVIEWS / job, status)
        wait = (self.pool.queue + 1) * limits.wall_seconds
        threading.Thread(target=self._run, args=(task, limits, root, status, wait), name=f"studio-render-{job[:6]}",
                         daemon=True).start()
        return status

    def _run(self, task: Task, limits: Limits, root: Path | None, status: dict[str, Any], wait: float) -> None:
        files: dict[str, bytes] = {}
        work = tempfile.mkdtemp(prefix="billcast-studio-")  # the render's folder, removed here however it ended
        try:
            meta, data = self.pool.run(replace(task, args={**task.args, "work_dir": work}), limits, 0, wait)
            body = meta.get("json") or {}
            if meta.get("status") != 200:
                status["error"] = body.get("error") or "; ".join(e["message"] for e in body.get("errors", [])[:1])
            else:
                offset = 0
                for name, length in body["files"].items():
                    files[name] = data[offset:offset + length]
                    offset += length
                status.update(size=body["size"], duration=body["duration"])
        except LimitHit as hit:
            log.warning("studio worker: render %s (%s)", hit.kind, hit.detail or "-")
            status["error"] = limit_problem(hit, "rendering the preview", limits)["message"]
        except Busy:
            status["error"] = "the studio was too busy to render it: try again"
        except Exception as exc:  # a preview must say it failed rather than spin forever
            status["error"] = f"the render failed: {type(exc).__name__}"
        finally:  # a worker killed mid-render (time, memory, crash) could not remove what it wrote
            shutil.rmtree(work, ignore_errors=True)
        status.update(status="failed" if status["error"] else "done", finished=time.time())
        if root is None:
            with self._lock:
                if status["job"] in self._kept:
                    self._kept[status["job"]] = (status, files)
            return
        folder = root / PREVIEWS / status["job"]
        for name, data in files.items():
            _write(folder / name, data)
        _write_status(folder, status)

    def status(self, job: str, root: Path | None) -> dict[str, Any] | None:
        """The render ``job`` as any process sees it; one left rendering past its deadline has failed."""
        with self._lock:
            if job in self._kept:
                return self._kept[job][0]
        if root is None or not JOB_ID.fullmatch(job):
            return None
        try:
            found = json.loads((root / PREVIEWS / job / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if found["status"] == "rendering" and time.time() > found["deadline"]:
            found.update(status="failed", error="the render stopped: the service process running it ended; "
                                                "start it again", finished=found["deadline"])
        return found

    def file(self, job: str, name: str, root: Path | None) -> bytes | None:
        with self._lock:
            if job in self._kept:
                return self._kept[job][1].get(name)
        found = self.status(job, root)
        if found is None or found["status"] != "done" or name not in FILES or root is None:
            return None
        try:
            return (root / PREVIEWS / job / name).read_bytes()
        except OSError:
            return None


def job_json(status: dict[str, Any]) -> dict[str, Any]:
    """What the page polls: the job, its state, seconds so far, the error, the video's size and length."""
    end = status["finished"] if status["finished"] is not None else time.time()
    return {"job": status["job"], "status": status["status"], "elapsed": round(end - status["started"], 1),
            "error": status["error"], "size": status["size"], "duration": status["duration"]}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)  # another service process sees all of it or nothing


def _write_status(folder: Path, status: dict[str, Any]) -> None:
    _write(folder / "status.json", json.dumps(status).encode("utf-8"))


def _prune(previews: Path, keep: int = KEEP_JOBS) -> None:
    """Remove the oldest finished renders beyond ``keep``."""
    try:
        folders = sorted((p for p in previews.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)


def run_task(pool: Pool, task: Task, limits: Limits, doing: str, problem_status: int) -> tuple[dict[str, Any], bytes]:
    """``task`` through ``pool``: its answer, or a limit hit as ``{"ok": false, "errors": [problem]}``.

    A text whose check ran out of time or memory is not tried again for its other views (the page asks
    for several at once), nor is a view of it that did: each would cost a worker."""
    hit = pool.hits.get(("check", task.key)) or pool.hits.get((task.op, task.key))
    try:
        if hit is not None:
            raise hit
        pool.enter(max(1, round(limits.wall_seconds / 2)))
        return pool.run(task, limits, int(hashlib.sha256(repr(task.key).encode()).hexdigest()[:8], 16),
                        limits.wall_seconds)
    except LimitHit as hit:
        log.warning("studio worker: %s %s (%s)", task.op, hit.kind, hit.detail or "-")
        if hit.kind in ("time", "memory"):
            with pool.lock:
                pool.hits[(task.op, task.key)] = hit
                while len(pool.hits) > HITS_KEPT:
                    pool.hits.popitem(last=False)
        return {"status": problem_status, "json": {"ok": False, "errors": [limit_problem(hit, doing, limits)]},
                "headers": {}}, b""
