"""Property-based fuzzing of what hostile files reach: the record loader and the storyboard loader.

Whatever the bytes, the answer is a record or a ``BillcastError`` naming where and what: never another
exception (a crash, a traceback, a 500). Bounded and derandomized, so CI sees the same examples each run.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billcast.jobs import parse_record
from billcast.jobs.record_files import load_records
from billcast.jobs.records import Record, RecordErrors, record_values
from billcast.renderer import BillcastError, Storyboard, parse_storyboard, plan

from conftest import LINKS, sample_lines
from test_records import base
from test_storyboard import BASE

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.decimals(allow_nan=False, places=3) | st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=15)
PATHS = st.sampled_from(["customer_id", "first_name", "last_name", "locale", "currency", "email", "tags",
                         "bill", "bill.total", "bill.lines", "bill.usage", "bill.period_start", "bill.due_date",
                         "bill.number", "debt", "debt.overdue_total", "debt.days_past_due", "debt.plan_offer",
                         "debt.invoices", "debt.deadline", "nickname"])
HOSTILE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["\x00", "Ma\rria", "\u202e", "{{ 7*7 }}", "%s%n", "<script>", "\ud800".encode("utf-8", "surrogatepass")
     .decode("utf-8", "replace"), "a" * 201, "0" * 30, "-0.00", "1e999999", "NaN", "Infinity"])


def mutated(path: str, value: Any) -> dict[str, Any]:
    obj = base()
    obj["debt"] = {"overdue_total": Decimal("12.00"), "days_past_due": 5}
    *parents, last = path.split(".")
    place: Any = obj
    for name in parents:
        if not isinstance(place.get(name), dict):
            place[name] = {}
        place = place[name]
    place[last] = value
    return obj


@FUZZ
@given(changes=st.lists(st.tuples(PATHS, JSON | HOSTILE_TEXT), min_size=1, max_size=4))
def test_a_mutated_record_is_a_record_or_a_record_error(changes: list[tuple[str, Any]]) -> None:
    obj = base()
    for path, value in changes:
        obj = mutated(path, value) if obj is None else {**obj, **mutated(path, value)}
    try:
        record = parse_record(obj, line=1, source="fuzz.jsonl")
    except RecordErrors as exc:
        assert exc.errors and all(e.line == 1 and e.message for e in exc.errors)
        return
    values = record_values(record)
    assert isinstance(values, dict)
    if record.debt is not None:
        assert record.debt.overdue_total > 0
    for text in (record.first_name, record.last_name or "", *record.tags.values()):
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


@FUZZ
@given(obj=JSON)
def test_any_json_value_is_a_record_or_a_record_error(obj: Any) -> None:
    try:
        parse_record(obj)
    except RecordErrors:
        pass


@FUZZ
@given(lines=st.lists(st.binary(max_size=80) | JSON.map(lambda v: json.dumps(v, default=str).encode()),
                      max_size=5), csv=st.booleans())
def test_any_bytes_in_a_record_file_are_records_or_refusals(tmp_path_factory: pytest.TempPathFactory,
                                                            lines: list[bytes], csv: bool) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / ("records.csv" if csv else "records.jsonl")
    head = b"customer_id,first_name,currency,bill.total\n" if csv else b""
    path.write_bytes(head + b"\n".join(lines))
    try:
        items = list(load_records(path))
    except BillcastError:
        return  # the whole file refused (an unreadable CSV header), with a message
    assert all(isinstance(item, (Record, RecordErrors)) for item in items)


def test_every_tricky_record_loads_and_plans_exactly_as_given() -> None:
    board = parse_storyboard(BASE, path="b.yaml")
    for obj in sample_lines("tricky_customers.jsonl"):
        record = parse_record(obj)
        timeline = plan(board, record_values(record), LINKS)
        assert timeline.scenes[0].layers[0].spec.text in (f"Hello {record.first_name}", f"Ciao {record.first_name}")


# --- storyboards ---------------------------------------------------------------------------------

YAML_SCALARS = st.sampled_from(["0", "-1", "1e309", ".nan", "~", "''", "[]", "{}", "yes", "9" * 30, "&a x",
                                "*a", "!!python/object:os.system x", "'{{ x.__class__ }}'", "'{% raw %}'",
                                "'{{ \"x\"|center(10**9) }}'", "[1, 2]", "99999", "3841", "#FFF"])
FIELDS = st.sampled_from(["name", "size", "fps", "poster_time", "default_language", "duration", "text", "box",
                          "kind", "color", "src", "layers", "scenes", "translations", "audio", "mirror_rtl",
                          "thumbnail", "colors", "hello", "when", "narration", "id", "cta"])


def _edit(text: str, field: str, value: str) -> str:
    """Replace the value of the first ``field:`` line, or add the field at the top level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.lstrip(" -")
        if stripped.startswith(field + ":"):
            lines[i] = line[:len(line) - len(stripped)] + f"{field}: {value}"
            return "\n".join(lines) + "\n"
    return text + f"{field}: {value}\n"


@FUZZ
@given(edits=st.lists(st.tuples(FIELDS, YAML_SCALARS), min_size=1, max_size=3))
def test_an_edited_storyboard_loads_or_is_refused_with_where(edits: list[tuple[str, str]]) -> None:
    text = BASE
    for field, value in edits:
        text = _edit(text, field, value)
    _loads_or_refused(text)


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")))
def test_any_text_as_a_storyboard_is_refused_with_where(text: str) -> None:
    _loads_or_refused(text)


@FUZZ
@given(template=st.text(alphabet="{}%#()[]|.'\"~*+-_ abcxyz0123456789\n", max_size=60))
def test_any_template_text_loads_and_plans_or_is_refused(template: str) -> None:
    text = BASE.replace('{{ t.hello }}"\n        box', json.dumps(template)[1:-1] + '"\n        box')
    board = _loads_or_refused(text)
    if board is not None:
        try:
            plan(board, {"first_name": "Ada", "locale": "en-US"}, LINKS)
        except BillcastError as exc:
            assert exc.path == "b.yaml"  # type: ignore[attr-defined]


def _loads_or_refused(text: str) -> Storyboard | None:
    try:
        return parse_storyboard(text, path="b.yaml", assets_dir=None)
    except BillcastError as exc:
        assert "b.yaml" in str(exc)
        return None
