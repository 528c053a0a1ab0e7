"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster, an unprivileged owner.

``start()`` runs ``initdb`` into a new folder under /tmp and ``pg_ctl start`` on a
free loopback port, with a password of its own; PostgreSQL refuses to run as
root, so as root the server runs as the system user ``billcast-test`` (made when
missing). ``Server.database()`` gives each test an empty database of its own.
``make test`` installs Debian's ``postgresql`` package when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

BIN_GLOB = "/usr/lib/postgresql/*/bin"
USER = "billcast-test"  # runs the server when the tests run as root
ADMIN = "billcast"  # the cluster's superuser
SETTINGS = {  # a throwaway cluster: durability off, room for two services, a run and its pool
    "listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
    "max_connections": "200", "shared_buffers": "32MB"}


class Unavailable(RuntimeError):
    """Debian's PostgreSQL is not installed here."""


@dataclass(frozen=True)
class Server:
    """A running server (or one named by BILLCAST_TEST_POSTGRES_URL) and how to reach it as its superuser."""

    admin_url: str  # the superuser's URL on the ``postgres`` database
    root: Path | None = None  # the cluster's folder when this process started it
    bin: Path | None = None

    def url(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """The URL of a new empty database, dropped afterwards with whatever is still connected to it."""
        name = f"billcast_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            yield self.url(name)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    def stop(self) -> None:
        if self.root is None or self.bin is None:
            return
        try:
            _run(_as_owner() + [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                                "-w", "stop"], self.root)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def find_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = [path for path in Path("/").glob(BIN_GLOB.lstrip("/")) if (path / "initdb").is_file()]
    return max(found, key=lambda path: int(path.parent.name), default=None) if found else None


def start() -> Server:
    """Initialise and start a cluster of its own; raises Unavailable without PostgreSQL, RuntimeError on failure."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise Unavailable(f"no PostgreSQL in {BIN_GLOB} (Debian's postgresql package; `make test` installs it)")
    _ensure_user()
    root = Path(tempfile.mkdtemp(prefix="billcast-pg-"))
    try:
        password = secrets.token_hex(16)
        (root / "pwfile").write_text(password + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(root, USER, USER)
            shutil.chown(root / "pwfile", USER, USER)
        _run(_as_owner() + [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", ADMIN, "-A", "scram-sha-256",
                            f"--pwfile={root / 'pwfile'}", "-E", "UTF8", "--no-locale", "--no-sync"], root)
        port = free_port()
        options = " ".join(f"-c {key}={value}" for key, value in {
            **SETTINGS, "port": str(port), "unix_socket_directories": str(root)}.items())
        _run(_as_owner() + [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"),
                            "-o", options, "-w", "-t", "60", "start"], root)
    except Exception as exc:
        log = root / "server.log"
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc}" + (f"\nits log ends:\n{tail}" if tail else "")) from exc
    return Server(f"postgresql+psycopg://{ADMIN}:{password}@127.0.0.1:{port}/postgres", root, bin_dir)


def _as_owner() -> list[str]:
    """The prefix that runs a command as the server's owner: none unless we are root."""
    return ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []


def _ensure_user() -> None:
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
        _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], Path("/"))


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
