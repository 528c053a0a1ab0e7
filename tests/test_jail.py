"""The generic worker jail (``billcast.jobs.jail``): answers, CPU and wall-clock limits, memory, a handler's own
failure, and a new child after each limit hit. The handlers below run in the child (this file is importable
there through ``PYTHONPATH``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from billcast.jobs.jail import Jail, LimitHit, Limits

HANDLER = "test_jail:handle"


def handle(job: str) -> tuple[object, bytes]:
    """What the child does with each kind of job."""
    if job == "spin":  # busy on the CPU, never sleeping
        while True:
            pass
    if job == "sleep":  # blocked: only the wall clock can end it
        time.sleep(3600)
    if job == "hog":
        return {"got": len(bytearray(4 * 1024**3))}, b""
    if job == "boom":
        raise ValueError("the handler's own mistake")
    if job == "leave":  # a program left running in its process group, as an ffmpeg of a render would be
        return {"pid": subprocess.Popen(["sleep", "60"]).pid}, b""
    if job == "spawn":  # what a program it starts (ffmpeg) runs under
        shown = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0), os.nice(0))"],
                               capture_output=True, text=True, check=True).stdout.split()
        return {"policy": int(shown[0]), "nice": int(shown[1])}, b""
    me = psutil.Process()
    group = Path("/proc/self/autogroup")
    shown = group.read_text().split() if group.is_file() else []  # empty outside any autogroup
    return {"pid": os.getpid(), "nice": me.nice(), "policy": os.sched_getscheduler(0), "group_nice": int(shown[-1]) if shown else None}, job.encode()


@pytest.fixture
def jail(monkeypatch) -> Jail:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    made = Jail(HANDLER, memory_mb=512)
    yield made
    made.close()


def test_a_job_is_answered_by_a_low_priority_child_that_stays_for_the_next(jail: Jail) -> None:
    limits = Limits(cpu_seconds=5, wall_seconds=30, memory_mb=512)
    meta, data = jail.run("hello", limits)
    assert data == b"hello" and meta["pid"] != os.getpid() and meta["nice"] == 19
    assert meta["group_nice"] in (19, None)  # a session of its own: its scheduler group yields too (autogroup)
    assert meta["policy"] == os.SCHED_IDLE  # gives the CPU up at once to any thread that wakes
    assert jail.run("spawn", limits)[0] == {"policy": os.SCHED_IDLE, "nice": 19}  # so does its ffmpeg
    assert jail.run("again", limits)[0]["pid"] == meta["pid"]


@pytest.mark.parametrize("job, limits", [("spin", Limits(cpu_seconds=1, wall_seconds=60, memory_mb=512)),
                                         ("sleep", Limits(cpu_seconds=60, wall_seconds=1, memory_mb=512))])
def test_cpu_time_and_the_wall_clock_each_end_a_job(jail: Jail, job: str, limits: Limits) -> None:
    first = jail.run("hello", limits)[0]["pid"]
    with pytest.raises(LimitHit) as hit:
        jail.run(job, limits)
    assert hit.value.kind == "time"
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    assert jail.run("hello", limits)[0]["pid"] != first  # a new child for the next job


def test_memory_beyond_the_limit_is_its_own_answer_and_a_new_child_follows(jail: Jail) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=30, memory_mb=512)
    first = jail.run("hello", limits)[0]["pid"]
    with pytest.raises(LimitHit) as hit:
        jail.run("hog", limits)
    assert hit.value.kind == "memory"
    assert jail.run("hello", limits)[0]["pid"] != first


def test_a_child_that_died_between_jobs_takes_what_it_started_with_it(jail: Jail) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=30, memory_mb=512)
    left = psutil.Process(jail.run("leave", limits)[0]["pid"])
    child = jail.pid
    assert child is not None
    os.kill(child, signal.SIGKILL)  # the child alone, between jobs
    deadline = time.monotonic() + 10
    while jail.pid is not None and time.monotonic() < deadline:  # its threads end a moment after it
        time.sleep(0.02)
    assert jail.pid is None  # seen as ended without being reaped: its process group is still its own
    jail.warm()
    left.wait(timeout=10)  # gone with the group: the next job's child does not inherit it
    assert not left.is_running() or left.status() == psutil.STATUS_ZOMBIE
    assert jail.run("hello", limits)[0]["pid"] != child


def test_a_handlers_exception_is_an_error_and_the_child_goes_on(jail: Jail) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=30, memory_mb=512)
    first = jail.run("hello", limits)[0]["pid"]
    with pytest.raises(LimitHit) as hit:
        jail.run("boom", limits)
    assert (hit.value.kind, hit.value.detail) == ("error", "ValueError")
    assert jail.run("hello", limits)[0]["pid"] == first
