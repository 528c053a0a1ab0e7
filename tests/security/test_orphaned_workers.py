"""``billcast run`` killed with SIGKILL takes its pool workers with it: none goes on rendering for nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from test_campaign_run import SECRET, good_records, write_campaign

pytestmark = pytest.mark.slow


def ended(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Those of ``processes`` still running after ``seconds`` (a zombie, waiting for whoever adopted it to
    reap it, has ended)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for p in processes:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_sigkill_of_the_driver_ends_its_pool_workers(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, good_records() * 1)
    env = dict(os.environ, BILLCAST_TEST_SECRET=SECRET, BILLCAST_CACHE_DIR="off")
    driver = subprocess.Popen([sys.executable, "-P", "-m", "billcast", "-q", "run", str(path), "--workers", "3"],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[psutil.Process] = []
    try:
        process = psutil.Process(driver.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 3 and driver.poll() is None:
            workers = [p for p in process.children() if "python" in p.name().lower()]
            time.sleep(0.05)
        assert len(workers) == 3, f"the pool never started: {driver.stderr.read().decode() if driver.poll() else ''}"
        killed_leaves_none(driver, workers, "workers")
    finally:
        reap(driver, workers)


def killed_leaves_none(driver: subprocess.Popen, workers: list[psutil.Process], what: str) -> None:
    """SIGKILL ``driver``: none of ``workers`` may go on after it."""
    driver.send_signal(signal.SIGKILL)
    driver.wait(10)
    alive = ended(workers, 10)
    assert not alive, f"{what} left running after their driver was killed: {[p.pid for p in alive]}"


def reap(driver: subprocess.Popen, workers: list[psutil.Process]) -> None:
    """End the test's own processes, by pid, if any outlived it."""
    if driver.poll() is None:
        driver.kill()
    driver.wait()
    for worker in workers:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass
