"""Pausing work that can wait while the rest of the host is busy, so that it takes nothing from the public side.

``SCHED_IDLE`` gives the CPU up whenever another thread wants it, but work running
on the *other* CPU still shares the caches and the memory bus with the threads
that answer people: on a small host, a preview render beside the public side
made its slowest answers about half as slow again. So while a studio job runs,
the process waiting for it looks at the host's CPU time every
:data:`SLICE` seconds (``/proc/stat``) and stops the job's whole process group
(``SIGSTOP``: the worker and the ffmpeg it started) while everything else
together used more than ``above`` of the host's CPUs; it continues it
(``SIGCONT``) once they use less. A job stopped for longer than ``most`` seconds
in all is ended: the public side has been busy for that long.

What counts as "everything else" is CPU time at the normal priority: the
studio's worker, its ffmpeg and the admin side run niced, and the kernel books
niced processes' user time apart (``nice`` in ``/proc/stat``). Their system
time cannot be told apart, so a job's own system time counts too: it is a few
percent of a CPU, well under any sensible threshold.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

STAT = Path("/proc/stat")
SLICE = 0.05  # seconds between two looks at the host's CPU time
BUSY_FIELDS = (0, 2, 5, 6)  # user, system, irq, softirq: not nice, idle, iowait or steal

MOST = 3.0  # times its own wall-clock limit: how long a job may be stopped in all


def _ticks(path: Path) -> tuple[int, int] | None:
    """The host's busy ticks at the normal priority and its ticks in all, since it started."""
    try:
        with path.open("rb") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 7:
        return None
    total = sum(fields[:8])  # guest time is inside user time already
    return sum(fields[index] for index in BUSY_FIELDS), total


class Pacer:
    """One job's pauses: stopped while other work uses more than ``above`` (a share of the host's CPUs,
    0 to 1), for at most ``most`` seconds in all. Call :meth:`tick` every :data:`SLICE` seconds while it
    runs; it says how many seconds the job has been stopped since the last call, which its wall-clock
    deadline moves by."""

    def __init__(self, group: int, above: float, most: float, path: Path | None = None) -> None:
        self.group = group
        self.above = above
        self.most = most
        self.path = path or STAT
        self.stopped_for = 0.0  # seconds in all
        self._stopped_at: float | None = None
        self._looked = time.monotonic()
        self._last = _ticks(self.path)

    def busy(self) -> bool | None:
        """Whether other work used more than the threshold since the last look (None: cannot tell)."""
        now = _ticks(self.path)
        last, self._last = self._last, now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return (now[0] - last[0]) / (now[1] - last[1]) > self.above

    def tick(self) -> float:
        """Stop or continue the job for the next slice; the seconds it was stopped since the last call."""
        moved = self._account()
        if self._last is None or time.monotonic() - self._looked < SLICE:  # never, or too soon to tell
            return moved
        self._looked = time.monotonic()
        if self.busy():
            if self._stopped_at is None:
                self._signal(signal.SIGSTOP)
                self._stopped_at = time.monotonic()
        else:
            self.resume()
        return moved

    def over(self) -> bool:
        """Whether the job has been stopped for longer than it may be."""
        self._account()
        return self.stopped_for > self.most

    def resume(self) -> None:
        """Continue the job, if stopped (always called once the job is over, whatever happened)."""
        if self._stopped_at is not None:
            self._account()
            self._stopped_at = None
            self._signal(signal.SIGCONT)

    def _account(self) -> float:
        if self._stopped_at is None:
            return 0.0
        now = time.monotonic()
        moved, self._stopped_at = now - self._stopped_at, now
        self.stopped_for += moved
        return moved

    def _signal(self, which: int) -> None:
        try:
            os.killpg(self.group, which)
        except OSError:  # it ended: the caller sees that in its answer
            pass
