"""A worker process that runs untrusted work under CPU, memory and wall-clock limits, and stays for the next job.

The child (``python -P -m billcast.jobs.jail MODULE:FUNCTION``) ends with the
process that started it (:func:`billcast.jobs.orphans.die_with_parent`), runs at
the lowest priority (``nice 19`` and ``SCHED_IDLE``, see :mod:`billcast.jobs.priority`)
so the process that serves people keeps the CPU, and cannot map more than its memory limit (``RLIMIT_AS``). Before each job
its CPU-time limit (``RLIMIT_CPU``, soft) is moved to what it has used so far
plus the job's allowance: a job that spins is killed by the kernel, and the
parent kills a job that outlives its wall-clock deadline (blocked, or asleep).
While it waits, the parent stops the job whenever other work keeps the host
busy (:mod:`billcast.jobs.yielding`); the time stopped moves the deadline on.

Jobs go to the child pickled (the parent is trusted); answers come back as a
length-prefixed JSON header and raw bytes, never a pickle, so a child whose
work went wrong cannot make the parent run anything.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pickle
import queue
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billcast.jobs.orphans import die_with_parent
from billcast.jobs.priority import only_when_idle
from billcast.jobs.yielding import MOST, SLICE, Pacer

HEADER = struct.Struct("!II")  # the answer's JSON length, then its bytes' length
PICKLE = struct.Struct("!I")
START_SECONDS = 60.0  # how long a new child may take to import its handler and say it is ready


@dataclass(frozen=True)
class Limits:
    """What one job may use: CPU seconds, wall-clock seconds, and the child's address space in MB."""

    cpu_seconds: float
    wall_seconds: float
    memory_mb: int


class LimitHit(Exception):
    """A job that did not finish: ``kind`` is ``time``, ``memory``, ``busy`` (stopped for too long while the
    host was busy: :mod:`billcast.jobs.yielding`), ``crash`` (the child died) or ``error`` (the handler
    raised; ``detail`` is the exception's type)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class _Spawner:
    """Starts children from one long-lived thread: the kernel's parent-death signal fires when the *thread*
    that started a child ends, and a request's thread may end long before the service does."""

    def __init__(self) -> None:
        self._asks: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, args: list[str]) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="billcast-jail-spawner", daemon=True)
                self._thread.start()
        done: queue.Queue = queue.Queue(maxsize=1)
        self._asks.put((args, done))
        made = done.get()
        if isinstance(made, BaseException):
            raise made
        return made

    def _serve(self) -> None:
        while True:
            args, done = self._asks.get()
            try:
                done.put(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                                          start_new_session=True))
            except BaseException as exc:  # handed to the caller
                done.put(exc)


_spawner = _Spawner()


class Jail:
    """One long-lived child process running ``handler`` (``"module:function"``, which takes the job and returns
    ``(meta, data)``: a JSON-able value and bytes). A job is stopped while other work keeps more than
    ``yield_above`` of the host's CPUs busy (0: never; :mod:`billcast.jobs.yielding`). Not thread-safe:
    one caller at a time."""

    def __init__(self, handler: str, memory_mb: int, yield_above: float = 0.0) -> None:
        self.handler = handler
        self.memory_mb = memory_mb
        self.yield_above = yield_above
        self._child: subprocess.Popen | None = None
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and _alive(self._child) else None

    def warm(self) -> None:
        """Start the child now, without waiting for it to be ready: the first job then waits less."""
        if self._child is not None and not _alive(self._child):
            self.close()  # it died between jobs: what it started goes with it
        if self._child is None:
            self._child = _spawner.popen([sys.executable, "-P", "-m", "billcast.jobs.jail", self.handler,
                                          str(os.getpid()), str(self.memory_mb)])
            self._ready = False
            weakref.finalize(self, _kill, self._child)  # a jail no longer used ends its child

    def _start(self) -> subprocess.Popen:
        self.warm()
        child = self._child
        assert child is not None
        if not self._ready:
            try:
                meta, _ = _read_answer(child, _Deadline(START_SECONDS))
            except LimitHit:
                self.close()
                raise
            if meta != {"ready": True}:
                self.close()
                raise LimitHit("crash", "the worker did not start")
            self._ready = True
        return child

    def run(self, job: Any, limits: Limits) -> tuple[Any, bytes]:
        """``job`` done by the child within ``limits``: its ``(meta, data)``; :class:`LimitHit` otherwise, after
        which the child is gone and the next job starts a new one."""
        child = self._start()
        payload = pickle.dumps((limits.cpu_seconds, job), protocol=pickle.HIGHEST_PROTOCOL)
        pacer = Pacer(child.pid, self.yield_above, self.stoppable(limits)) if self.yield_above > 0 else None
        try:
            assert child.stdin is not None
            child.stdin.write(PICKLE.pack(len(payload)) + payload)
            child.stdin.flush()
            meta, data = _read_answer(child, _Deadline(limits.wall_seconds, pacer))
        except (LimitHit, OSError) as exc:
            self.close()
            if isinstance(exc, LimitHit) and exc.kind in ("time", "busy"):
                raise
            code = child.returncode
            if code == -signal.SIGXCPU:
                raise LimitHit("time", "out of CPU time") from None
            raise LimitHit("crash", f"exit {code}" if code is not None else str(exc)) from None
        finally:
            if pacer is not None:
                pacer.resume()
        if isinstance(meta, dict) and meta.get("jail") == "memory":
            self.close()  # a child that ran out of memory may be half broken: the next job gets a new one
            raise LimitHit("memory")
        if isinstance(meta, dict) and meta.get("jail") == "error":
            raise LimitHit("error", str(meta.get("error", "")))
        return meta, data

    def stoppable(self, limits: Limits) -> float:
        """How long a job within ``limits`` may be stopped for the host in all, in seconds (0: never stopped)."""
        return MOST * limits.wall_seconds if self.yield_above > 0 else 0.0

    def close(self) -> None:
        """End the child now (SIGKILL): it holds only caches."""
        if self._child is not None:
            _kill(self._child)
            self._child = None


def _alive(child: subprocess.Popen) -> bool:
    """Whether the child runs, without reaping it if it ended: until it is reaped, its pid (and so its process
    group, which :func:`_kill` ends) stays its own."""
    if child.returncode is not None:
        return False
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _kill(child: subprocess.Popen) -> None:
    """The child and anything it started (its own process group: ffmpeg, for a render)."""
    if child.returncode is None:  # not reaped yet: its pid (and so its group) is still its own
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
    child.wait()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


class _Deadline:
    """A job's wall-clock deadline, moved on by the time its :class:`Pacer` kept it stopped."""

    def __init__(self, seconds: float, pacer: Pacer | None = None) -> None:
        self.at = time.monotonic() + seconds
        self.pacer = pacer

    def wait(self, fd: int) -> None:
        """Until ``fd`` can be read: :class:`LimitHit` ``time`` past the deadline, ``busy`` once stopped too long."""
        while True:
            left = self.at - time.monotonic()
            if left <= 0:
                raise LimitHit("time")
            ready, _, _ = select.select([fd], [], [], left if self.pacer is None else min(left, SLICE))
            if self.pacer is not None:
                self.at += self.pacer.tick()
                if self.pacer.over():
                    raise LimitHit("busy", f"{self.pacer.stopped_for:.0f} s")
            if ready:
                return


def _read_exact(child: subprocess.Popen, size: int, deadline: _Deadline) -> bytes:
    assert child.stdout is not None
    fd = child.stdout.fileno()
    chunks, got = [], 0
    while got < size:
        deadline.wait(fd)
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            raise LimitHit("crash", "the worker ended")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_answer(child: subprocess.Popen, deadline: _Deadline) -> tuple[Any, bytes]:
    meta_size, data_size = HEADER.unpack(_read_exact(child, HEADER.size, deadline))
    meta = json.loads(_read_exact(child, meta_size, deadline))
    return meta, _read_exact(child, data_size, deadline)


# --- the child ------------------------------------------------------------------------------------------


def _answer(out: Any, meta: Any, data: bytes = b"") -> None:
    encoded = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out.write(HEADER.pack(len(encoded), len(data)) + encoded + data)
    out.flush()


def _allow_cpu(seconds: float) -> None:
    """Move the soft CPU limit to what this process used so far plus ``seconds`` (the hard one stays)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def serve(handler: Callable[[Any], tuple[Any, bytes]], memory_mb: int) -> None:
    """The child's loop: confine its memory, then answer jobs from stdin on the protocol's stdout until
    stdin ends."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a job killed for its CPU time leaves no core file
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    source = os.fdopen(0, "rb")
    _answer(out, {"ready": True})
    while True:
        head = source.read(PICKLE.size)
        if len(head) < PICKLE.size:
            return
        cpu_seconds, job = pickle.loads(source.read(PICKLE.unpack(head)[0]))
        _allow_cpu(cpu_seconds)
        try:
            meta, data = handler(job)
        except MemoryError:
            _answer(out, {"jail": "memory"})
            os._exit(0)
        except Exception as exc:  # the handler's own failure: the parent reports it as a crash
            _answer(out, {"jail": "error", "error": type(exc).__name__})
            continue
        _answer(out, meta, data)


def main(argv: list[str]) -> None:
    spec, parent, memory = argv
    die_with_parent(int(parent))
    module, _, function = spec.partition(":")
    handler = getattr(importlib.import_module(module), function)  # trusted code, at the usual priority
    only_when_idle()  # its session's scheduler group too (a session of its own), and SCHED_IDLE
    serve(handler, int(memory))


if __name__ == "__main__":
    main(sys.argv[1:])
