"""Shared fixtures: paths found from this file, tiny renders, golden-frame regeneration."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import pg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
STORYBOARDS = sorted((ROOT / "storyboards").glob("*.yaml"))
LINKS = {"page": "http://127.0.0.1:8000/r/TOKEN/", "pay": "http://127.0.0.1:8000/pay/TOKEN?option=full&src=qr",
         "plan": "http://127.0.0.1:8000/pay/TOKEN?option=plan&src=qr"}


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by `make test`; Playwright downloads no browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium driven by Playwright, for one test module (one Playwright runs at a time)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")  # one Playwright at a time: each browser test module starts its own
def browser():
    """Debian's Chromium for the test module that asks for it."""
    with chromium_browser() as chromium:
        yield chromium


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite the golden frames in tests/golden from the current renderer")


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def sample_lines(name: str) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in (ROOT / "examples" / name).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def sample(customer_id: str, name: str = "customers.jsonl") -> dict:
    return next(obj for obj in sample_lines(name) if obj["customer_id"] == customer_id)


@pytest.fixture
def write_record(tmp_path: Path):
    """Write a record object to a JSON file and return its path."""

    def write(obj: dict, name: str = "customer.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(obj, ensure_ascii=False, default=str), encoding="utf-8")
        return path

    return write


# --- the ledger on both backends: a SQLite file, and a real PostgreSQL server (tests/pg.py) ----------

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.Server]:
    """A PostgreSQL server for the session: BILLCAST_TEST_POSTGRES_URL's, else Debian's started in /tmp.

    In CI (CI=true) a server that cannot be had fails the tests that need it;
    elsewhere they are skipped when PostgreSQL is not installed, with the reason.
    """
    external = os.environ.get("BILLCAST_TEST_POSTGRES_URL")
    if external:
        yield pg.Server(external)
        return
    try:
        server = pg.start()
    except pg.Unavailable as exc:
        if IN_CI:
            pytest.fail(f"CI runs the PostgreSQL tests and cannot skip them: {exc}", pytrace=False)
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def empty_ledger(request: pytest.FixtureRequest, backend: str, folder: Path) -> Iterator[str]:
    """A ledger URL on an empty database: a SQLite file in ``folder``/var (not made yet), or a new PostgreSQL
    database of its own."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'var' / 'ledger.db'}"
        return
    server: pg.Server = request.getfixturevalue("postgres")
    with server.database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger for one test, on each backend in turn."""
    with empty_ledger(request, request.param, tmp_path) as url:
        yield url
