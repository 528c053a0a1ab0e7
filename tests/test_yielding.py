"""The studio's jobs stop while other work keeps the host busy (``billcast.jobs.yielding``): stopped with what
they started, continued when the host is quiet, their wall clock counting only the time they ran, ended once
stopped for too long. The host's CPU time is a file the test writes, in ``/proc/stat``'s format, except in the
last test, which reads the real one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from billcast.jobs import yielding
from billcast.jobs.jail import Jail, LimitHit, Limits
from billcast.jobs.yielding import MOST, Pacer

HANDLER = "test_yielding:handle"


def handle(job: tuple[str, float]) -> tuple[object, bytes]:
    """In the child: start a program (as a render starts ffmpeg), then use ``seconds`` of CPU time."""
    what, seconds = job
    helper = subprocess.Popen(["sleep", "60"])
    began = time.process_time()
    while time.process_time() - began < seconds:
        pass
    helper.kill()
    helper.wait()
    return {"pid": os.getpid(), "helper": helper.pid, "what": what}, b""


class FakeHost:
    """A ``/proc/stat`` whose CPU time moves on every 10 ms: busy (at the normal priority) or idle, as set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.busy = False
        self.ticks = [1000, 5000, 300, 100000, 50, 0, 20, 0, 0, 0]  # user nice system idle iowait irq softirq steal...
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        line = "cpu  " + " ".join(map(str, self.ticks))
        self.path.with_suffix(".new").write_text(f"{line}\ncpu0 {' '.join(map(str, self.ticks))}\n")
        self.path.with_suffix(".new").replace(self.path)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.ticks[0 if self.busy else 3] += 2  # two CPUs' worth of ticks: all user, or all idle
            self.ticks[1] += 0 if self.busy else 2  # niced work (the studio's own) never counts
            self._write()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def host(tmp_path: Path, monkeypatch) -> FakeHost:
    monkeypatch.setattr(yielding, "STAT", tmp_path / "stat")
    made = FakeHost(tmp_path / "stat")
    yield made
    made.close()


@pytest.fixture
def jail(monkeypatch) -> Jail:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    made = Jail(HANDLER, memory_mb=512, yield_above=0.3)
    yield made
    made.close()


def _states(pids: list[int]) -> list[str]:
    return [psutil.Process(pid).status() for pid in pids]


def _helper_of(child: int) -> int | None:
    kids = psutil.Process(child).children()
    return kids[0].pid if kids else None


def test_a_job_stops_with_what_it_started_while_the_host_is_busy_and_its_wall_clock_waits(jail: Jail, host: FakeHost) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=1.5, memory_mb=512)
    jail.run(("warm", 0.0), limits)  # the child is ready: what follows is the job alone
    host.busy = True
    answer: dict = {}
    worker = threading.Thread(target=lambda: answer.update(meta=jail.run(("work", 0.6), limits)[0]))
    began = time.monotonic()
    worker.start()
    child = jail.pid
    assert child is not None
    deadline = time.monotonic() + 5
    while (helper := _helper_of(child)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helper is not None
    time.sleep(max(0.0, 2.5 - (time.monotonic() - began)))  # longer than the job's wall-clock limit
    assert _states([child, helper]) == [psutil.STATUS_STOPPED] * 2
    cpu_stopped = psutil.Process(child).cpu_times().user
    time.sleep(0.3)
    assert psutil.Process(child).cpu_times().user == cpu_stopped  # stopped means no CPU at all
    host.busy = False
    worker.join(timeout=10)
    assert answer["meta"]["what"] == "work"  # done, although 2.5 s passed against a limit of 1.5 s
    assert time.monotonic() - began > limits.wall_seconds
    assert _states([child]) != [psutil.STATUS_STOPPED]  # continued, ready for the next job
    assert jail.run(("again", 0.0), limits)[0]["pid"] == child


def test_a_job_stopped_for_longer_than_it_may_be_ends_and_a_new_child_takes_the_next(jail: Jail, host: FakeHost) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=0.4, memory_mb=512)
    first = jail.run(("warm", 0.0), limits)[0]["pid"]
    host.busy = True
    began = time.monotonic()
    with pytest.raises(LimitHit) as hit:
        jail.run(("work", 0.3), limits)
    assert hit.value.kind == "busy"
    assert MOST * limits.wall_seconds <= time.monotonic() - began < MOST * limits.wall_seconds + 5
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    host.busy = False
    assert jail.run(("next", 0.0), limits)[0]["pid"] != first


def test_a_quiet_host_never_stops_a_job(jail: Jail, host: FakeHost) -> None:
    limits = Limits(cpu_seconds=10, wall_seconds=5, memory_mb=512)
    child = jail.run(("warm", 0.0), limits)[0]["pid"]
    done = threading.Event()
    worker = threading.Thread(target=lambda: (jail.run(("work", 0.8), limits), done.set()))
    worker.start()
    states = []
    while not done.is_set():
        states.append(psutil.Process(child).status())
        time.sleep(0.02)
    worker.join()
    assert psutil.STATUS_STOPPED not in states and len(states) > 10


def _share(load: list[str], seconds: float = 0.6) -> float:
    """How much of the host a program kept busy at the normal priority, as a Pacer measures it."""
    spin = subprocess.Popen([*load, sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        first = yielding._ticks(yielding.STAT)
        time.sleep(seconds)
        then = yielding._ticks(yielding.STAT)
    finally:
        spin.kill()
        spin.wait()
    assert first is not None and then is not None
    return (then[0] - first[0]) / (then[1] - first[1])


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="the host's CPU time is Linux's /proc/stat")
def test_work_at_the_normal_priority_counts_and_niced_work_does_not() -> None:
    cpus = os.cpu_count() or 1
    normal, niced = _share([]), _share(["nice", "-n", "19"])
    assert normal - niced > 0.5 / cpus  # a CPU kept busy at nice 0 shows; one at nice 19 does not


@pytest.mark.parametrize("stat", [None, "", "cpu  12 x 3\n", "cpu  1 2 3\n", "\x00\xff garbage"])
def test_without_a_readable_proc_stat_nothing_stops(tmp_path: Path, stat: str | None) -> None:
    path = tmp_path / "stat"
    if stat is not None:
        path.write_bytes(stat.encode("latin-1"))
    job = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pacer = Pacer(job.pid, 0.0, 1.0, path)  # would stop for any work at all, if it could tell
        time.sleep(yielding.SLICE * 1.5)
        assert pacer.tick() == 0.0 and not pacer.over()
        assert psutil.Process(job.pid).status() != psutil.STATUS_STOPPED
    finally:
        job.kill()
        job.wait()


def test_a_job_stopped_too_long_is_a_problem_the_editor_lists() -> None:
    from billcast.service.studio_worker import limit_problem

    problem = limit_problem(LimitHit("busy", "31 s"), "checking", Limits(cpu_seconds=10, wall_seconds=10, memory_mb=512))
    assert problem["message"] == ("checking waited 31 s for the public side, which kept the server busy: "
                                  "try again when it is quieter")
    doc = (Path(__file__).parents[1] / "docs" / "STUDIO.md").read_text(encoding="utf-8")
    assert f"`storyboard: {problem['message']}`" in doc
