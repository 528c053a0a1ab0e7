"""Running at a lower CPU priority, so that work which can wait leaves the CPU to the public side.

Where the kernel groups each session's processes for the scheduler (autogroup: a
process started by ``setsid``, a service manager, ``start_new_session``), niceness
counts only among the processes of one group, and each group gets an equal share.
So a process that leads its own session lowers its group's niceness too
(``/proc/self/autogroup``); a process in another's session lowers only its own.

Work that may wait for as long as it takes (the studio's checks, frames and
renders) runs under the ``SCHED_IDLE`` policy as well: niceness still gives it
a slice of a busy CPU, and a thread that wakes to answer a request would wait
for that slice to end; a ``SCHED_IDLE`` thread gives the CPU up at once to any
other thread that wakes, and gets only what nothing else wants.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(nice: int) -> None:
    """This process (and what it starts from now on) at niceness ``nice`` at least; its group too, if its own."""
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if os.getsid(0) != os.getpid():  # in someone else's session: its group is theirs to set
        return
    try:
        if int(AUTOGROUP.read_text(encoding="ascii").split()[-1]) < nice:
            AUTOGROUP.write_text(str(nice), encoding="ascii")
    except (OSError, ValueError, IndexError):  # no autogroup in this kernel, or not allowed: the niceness alone
        pass


def only_when_idle() -> None:
    """This thread (and the threads and processes it starts from now on) at niceness 19, under ``SCHED_IDLE``."""
    lower_priority(19)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed: niceness 19 alone
        pass
