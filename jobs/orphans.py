"""Worker processes that end when the process that started them dies, even by SIGKILL.

A pool worker of ``billcast run`` killed with its driver would otherwise go on rendering for
nobody. On Linux the kernel sends the worker SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread checks once a second that the
parent is still the one that started it, and ends the worker when it is not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
CHECK_SECONDS = 1.0
EXIT_ORPHANED = 70


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) dies: a pool's initializer.

    A process that leads its own process group (a studio worker, started in a session of
    its own) takes the whole group with it, so an ffmpeg it was running ends too: the
    kernel's signal is then SIGTERM, whose handler kills the group.
    """
    leads_group = os.getpgid(0) == os.getpid()
    if leads_group:
        signal.signal(signal.SIGTERM, lambda *_: _end(True))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM if leads_group else signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the thread below still watches
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        _end(leads_group)
    threading.Thread(target=_watch, args=(parent_pid, leads_group), name="billcast-parent-watch",
                     daemon=True).start()


def _end(group: bool) -> None:
    if group:
        os.killpg(0, signal.SIGKILL)  # this process and everything it started
    os._exit(EXIT_ORPHANED)


def _watch(parent_pid: int, group: bool) -> None:
    while True:
        time.sleep(CHECK_SECONDS)
        if os.getppid() != parent_pid:  # re-parented: the driver is gone
            _end(group)
