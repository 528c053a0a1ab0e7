"""A campaign run small and served by a real ``billcast serve`` (gunicorn) process, for the tests that need one.

``published_campaign`` runs two sample customers at 160x90 into a folder;
``Served`` starts the service on a free loopback port, waits for ``/healthz``,
keeps everything it logs, and stops it with SIGTERM (gunicorn's graceful stop).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from billcast.jobs.campaign import load_campaign
from billcast.jobs.links import recipient_token
from billcast.jobs.run import run_campaign

from test_campaign_run import SECRET, plain, write_campaign

CUSTOMERS = ("IT-000123", "DE-000456")  # Maria Rossi (it-IT), Jürgen Müller (de-DE)
ADMIN = "admin-token-for-serve-tests-0123456789"


def published_campaign(folder: Path) -> Path:
    """Two sample customers rendered tiny and published into ``folder``; the campaign file's path."""
    path = write_campaign(folder, [plain(cid) for cid in CUSTOMERS])
    counts = run_campaign(load_campaign(path), secret=SECRET.encode(), workers=1, cache_dir=folder / "cache")
    assert counts.published == len(CUSTOMERS)
    return path


def token(customer_id: str) -> str:
    return recipient_token(SECRET.encode(), "test-2026-11", customer_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Answer:
    """One request on a connection of its own (so successive requests may reach different workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


@dataclass
class Served:
    """``python -m ARGV`` (``billcast ... serve ...``, or ``gunicorn ...``) in a child process on ``port``
    (given as ``BILLCAST_PORT``); its stderr kept in ``log``."""

    argv: list[str]
    env: dict[str, str]
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    own_session: bool = False  # started as a service manager starts it: leading a session of its own

    def __enter__(self) -> Served:
        self.err = (self.folder / f"serve-{self.port}.err").open("w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", *self.argv], stdout=subprocess.DEVNULL, stderr=self.err,
            env={**os.environ, **self.env, "BILLCAST_PORT": str(self.port)}, cwd=self.folder,
            start_new_session=self.own_session)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"billcast serve exited {self.process.returncode}: {self.log}")
            try:
                if request(self.port, "GET", "/healthz").status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"billcast serve did not answer within 60 s: {self.log}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        return request(self.port, method, path, body, headers)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def log(self) -> str:
        self.err.flush()
        return (self.folder / f"serve-{self.port}.err").read_text(encoding="utf-8")

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.err.close()
