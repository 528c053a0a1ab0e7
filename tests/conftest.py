"""Shared fixtures: paths found from this file, tiny renders, golden-frame regeneration."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
STORYBOARDS = sorted((ROOT / "storyboards").glob("*.yaml"))
LINKS = {"page": "http://127.0.0.1:8000/r/TOKEN/", "pay": "http://127.0.0.1:8000/pay/TOKEN?option=full&src=qr",
         "plan": "http://127.0.0.1:8000/pay/TOKEN?option=plan&src=qr"}


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
