"""The customer record contract: loading, validation, refusals, and the values handed on."""

from __future__ import annotations

import copy
import csv
import json
import pickle
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from billcast.jobs import Record, RecordErrors, amount_due, load_record_file, load_records, parse_record, record_values
from billcast.renderer import RecordError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def base() -> dict[str, Any]:
    """A valid record, as JSON loaded with exact decimals gives it."""
    return {
        "customer_id": "IT-000123",
        "locale": "it-IT",
        "first_name": "Maria",
        "last_name": "Rossi",
        "email": "maria.rossi@example.org",
        "birth_date": "1961-04-02",
        "postcode": "40121",
        "account_number": "0012 3456 789",
        "service_address": "Via Roma 1, 40121 Bologna",
        "currency": "EUR",
        "bill": {
            "number": "2026-11-000123",
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
            "issue_date": "2026-11-05",
            "due_date": "2026-11-25",
            "total": "123.45",
            "lines": [
                {"label": "Energy", "amount": "80.10"},
                {"label": "Network charges", "amount": "25.00"},
                {"label": "Taxes", "amount": "18.35"},
            ],
            "unit": "kWh",
            "usage": [{"period": "2025-11", "quantity": Decimal("210.5")},
                      {"period": "2025-12", "quantity": Decimal("260.0")}],
        },
        "debt": {
            "overdue_total": "250.00",
            "days_past_due": 45,
            "invoices": [
                {"number": "2026-08-000123", "due_date": "2026-08-25", "amount": "120.00"},
                {"number": "2026-09-000123", "due_date": "2026-09-25", "amount": "130.00"},
            ],
            "plan_offer": {"installments": 3, "first_due_date": "2026-12-05"},
        },
        "tags": {"segment": "residential"},
    }


def changed(path: str, value: Any) -> dict[str, Any]:
    """``base()`` with one dotted path set (``...``: removed)."""
    obj = base()
    *parents, last = path.split(".")
    place: Any = obj
    for key in parents:
        place = place[int(key)] if key.isdigit() else place[key]
    if value is ...:
        del place[last]
    elif last.isdigit():
        place[int(last)] = value
    else:
        place[last] = value
    return obj


def problems(obj: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(RecordErrors) as caught:
        parse_record(obj, line=7, source="customers.jsonl")
    return [(error.field, error.message) for error in caught.value.errors]


def fields(obj: Any) -> list[str | None]:
    return [field for field, _ in problems(obj)]


def write_jsonl(path: Path, objects: list[Any]) -> Path:
    path.write_text("".join(json.dumps(obj, default=str, ensure_ascii=False) + "\n" for obj in objects),
                    encoding="utf-8")
    return path


def records_in(path: Path) -> list[Record]:
    items = list(load_records(path))
    assert all(isinstance(item, Record) for item in items), [str(item) for item in items]
    return [item for item in items if isinstance(item, Record)]


def refusals(items: list[Record | RecordErrors]) -> list[RecordErrors]:
    return [item for item in items if isinstance(item, RecordErrors)]


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)


# --- the sample files -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "count"), [
    ("customers.jsonl", 15), ("customers.csv", 15), ("tricky_customers.jsonl", 14)])
def test_every_sample_loads(name: str, count: int) -> None:
    items = list(load_records(EXAMPLES / name))
    assert refusals(items) == []
    assert len(items) == count
    assert len({item.customer_id for item in items}) == count


def test_samples_cover_the_cases_campaigns_need() -> None:
    records = records_in(EXAMPLES / "customers.jsonl")
    assert {record.locale for record in records} >= {"it-IT", "de-DE", "ar-EG", "en-US", None}
    assert {record.currency for record in records} == {"EUR", "EGP", "USD"}
    in_arrears = [record for record in records if record.debt is not None]
    assert {record.debt.days_past_due for record in in_arrears if record.debt} >= {5, 95}
    assert any(record.debt.plan_offer for record in in_arrears if record.debt)
    assert any(record.debt.plan_offer is None for record in in_arrears if record.debt)
    assert any(record.bill.total < 0 and record.bill.lines for record in records)
    assert any(not record.bill.usage for record in records)
    assert any(record.bill.unit == "m³" for record in records)
    for record in records:
        periods = [usage.period for usage in record.bill.usage]
        if periods:
            assert len(periods) >= 13 and "2025-10" in periods and periods[-1] == "2026-10"


def test_csv_and_jsonl_give_equal_records() -> None:
    assert list(load_records(EXAMPLES / "customers.csv")) == list(load_records(EXAMPLES / "customers.jsonl"))


def test_the_spec_example_parses_exactly() -> None:
    record = parse_record(base())
    assert record.bill.total == Decimal("123.45")
    assert record.bill.period_start == date(2026, 10, 1)
    assert record.bill.lines[1].label == "Network charges"
    assert record.bill.usage[0].quantity == Decimal("210.5")
    assert record.debt is not None and record.debt.plan_offer is not None
    assert record.debt.plan_offer.installments == 3
    assert record.debt.invoices[1].due_date == date(2026, 9, 25)
    assert record.tags == {"segment": "residential"}


# --- money ----------------------------------------------------------------------------------

def test_json_numbers_and_strings_give_exact_decimals(tmp_path: Path) -> None:
    # 0.1 + 0.2 == 0.30 only holds for exact decimals, never for binary floats
    obj = base()
    del obj["debt"]
    text = json.dumps(obj, default=str).replace(
        '"total": "123.45"', '"total": 0.30').replace(
        '"amount": "80.10"', '"amount": "0.1"').replace(
        '"amount": "25.00"', '"amount": 0.2').replace(
        '{"label": "Taxes", "amount": "18.35"}', '{"label": "Taxes", "amount": 0}')
    assert '"total": 0.30' in text and '"amount": 0.2}' in text
    (tmp_path / "exact.jsonl").write_text(text + "\n", encoding="utf-8")
    [record] = load_records(tmp_path / "exact.jsonl")
    assert isinstance(record, Record)
    assert [line.amount for line in record.bill.lines] == [Decimal("0.1"), Decimal("0.2"), Decimal(0)]
    assert all(type(line.amount) is Decimal for line in record.bill.lines)
    assert type(record.bill.total) is Decimal and str(record.bill.total) == "0.30"  # as written


def test_integers_and_exponents_are_amounts_too() -> None:
    assert parse_record(changed("bill.total", Decimal("1.2345E+2"))).bill.total == Decimal("123.45")
    obj = changed("bill.total", 100)
    obj["bill"]["lines"] = None
    assert parse_record(obj).bill.total == Decimal(100)


def test_binary_floats_are_refused() -> None:
    [(field, message)] = problems(changed("bill.total", 123.45))
    assert field == "bill.total" and "binary float" in message


@pytest.mark.parametrize("text", ["12,34", "1.234,56", "€12", "12.", ".5", " 12.00", "NaN", "1e3", "", "true"])
def test_amount_text_must_be_a_plain_decimal(text: str) -> None:
    obj = changed("bill.total", text)
    obj["bill"]["lines"] = None
    assert fields(obj) == ["bill.total"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_are_not_numbers(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "nan.jsonl"
    path.write_text(json.dumps(base(), default=str).replace('"123.45"', constant) + "\n", encoding="utf-8")
    [refused] = load_records(path)
    assert isinstance(refused, RecordErrors) and "not valid JSON" in refused.message
    assert refused.line == 1 and refused.customer_id == "IT-000123"


@pytest.mark.parametrize(("currency", "amount", "ok"), [
    ("EUR", "12.34", True), ("EUR", "12.340", True), ("EUR", "12.345", False), ("EUR", "12", True),
    ("JPY", "1200", True), ("JPY", "1200.5", False), ("BHD", "1.234", True), ("BHD", "1.2345", False),
    ("EGP", "1145.80", True)])
def test_at_most_the_currencys_minor_digits(currency: str, amount: str, ok: bool) -> None:
    obj = changed("bill.total", amount)
    obj["currency"] = currency
    obj["bill"]["lines"] = [{"label": "All", "amount": amount}]
    obj["debt"] = None
    if ok:
        assert parse_record(obj).bill.total == Decimal(amount)
    else:
        found = problems(obj)
        assert [field for field, _ in found] == ["bill.total", "bill.lines[0].amount"]
        assert f"{currency} allows at most" in found[0][1]


def test_minor_digits_are_checked_without_a_validation_context() -> None:
    with pytest.raises(ValidationError, match="EUR allows at most 2"):
        Record.model_validate(changed("debt.invoices.0.amount", "120.001"))


# --- one rule at a time ---------------------------------------------------------------------

@pytest.mark.parametrize(("path", "value", "field"), [
    ("customer_id", "IT 000123", "customer_id"),
    ("customer_id", "x" * 65, "customer_id"),
    ("customer_id", "IT-1\n", "customer_id"),
    ("customer_id", 123, "customer_id"),
    ("first_name", ..., "first_name"),
    ("first_name", "", "first_name"),
    ("first_name", "   ", "first_name"),
    ("first_name", None, "first_name"),
    ("last_name", "x" * 101, "last_name"),
    ("locale", "xx-YY", "locale"),
    ("locale", "it_IT", "locale"),
    ("currency", "EUROS", "currency"),
    ("currency", "eur", "currency"),
    ("currency", ..., "currency"),
    ("bill", ..., "bill"),
    ("bill.total", ..., "bill.total"),
    ("bill.due_date", ..., "bill.due_date"),
    ("bill.issue_date", "05/11/2026", "bill.issue_date"),
    ("bill.due_date", "2026-02-30", "bill.due_date"),
    ("bill.due_date", "2026-11-25T00:00:00", "bill.due_date"),
    ("bill.period_start", "2026-11-01", "bill.period_start"),
    ("bill.lines.2.amount", "18.30", "bill.lines"),
    ("bill.lines.1.amount", ..., "bill.lines[1].amount"),
    ("bill.lines.0.label", "", "bill.lines[0].label"),
    ("bill.usage.0.period", "2025-13", "bill.usage[0].period"),
    ("bill.usage.1.period", "2025-11", "bill.usage[1].period"),
    ("bill.usage.1.period", "2025-10", "bill.usage[1].period"),
    ("bill.usage.0.quantity", -1, "bill.usage[0].quantity"),
    ("bill.usage", [{"period": f"{2020 + i // 12}-{i % 12 + 1:02d}", "quantity": 1} for i in range(37)],
     "bill.usage"),
    ("debt.days_past_due", -1, "debt.days_past_due"),
    ("debt.days_past_due", Decimal("4.5"), "debt.days_past_due"),
    ("debt.days_past_due", True, "debt.days_past_due"),
    ("debt.days_past_due", ..., "debt.days_past_due"),
    ("debt.overdue_total", ..., "debt.overdue_total"),
    ("debt.invoices.0.due_date", ..., "debt.invoices[0].due_date"),
    ("debt.plan_offer.installments", 30, "debt.plan_offer.installments"),
    ("debt.plan_offer.installments", 1, "debt.plan_offer.installments"),
    ("debt.plan_offer.first_due_date", ..., "debt.plan_offer.first_due_date"),
    ("debt.deadline", "next week", "debt.deadline"),
    ("tags.segment", 5, "tags.segment"),
    ("tags", ["residential"], "tags"),
])
def test_each_rule_refuses_with_the_dotted_field(path: str, value: Any, field: str) -> None:
    assert fields(changed(path, value)) == [field]


@pytest.mark.parametrize(("path", "value"), [
    ("debt", None), ("debt", ...), ("locale", ...), ("locale", None), ("last_name", ...), ("email", ...),
    ("birth_date", ...), ("bill.lines", ...), ("bill.usage", []), ("bill.unit", ...), ("bill.number", ...),
    ("tags", ...), ("debt.plan_offer", ...), ("debt.invoices", ...), ("debt.days_past_due", 0),
    ("debt.plan_offer.installments", 2), ("debt.plan_offer.installments", 24), ("customer_id", "a" * 64),
    ("customer_id", "x.y_z-1"), ("bill.period_start", "2026-10-31"), ("debt.deadline", "2026-12-15"),
    ("debt.deadline", None),
])
def test_what_the_contract_allows(path: str, value: Any) -> None:
    parse_record(changed(path, value))


def test_unknown_fields_are_refused_at_every_level() -> None:
    obj = base()
    obj["nickname"] = "Mari"
    obj["bill"]["discount"] = "1.00"
    obj["debt"]["plan_offer"]["interest"] = "0"
    found = problems(obj)
    assert [field for field, _ in found] == ["bill.discount", "debt.plan_offer.interest", "nickname"]
    assert all("not a field of the record contract" in message for _, message in found)


def test_every_problem_of_a_record_is_listed() -> None:
    obj = base()
    obj["first_name"] = ""
    obj["currency"] = "EURO"
    obj["bill"]["usage"][0]["period"] = "2025-1"
    obj["debt"]["days_past_due"] = -3
    with pytest.raises(RecordErrors) as caught:
        parse_record(obj, line=7, source="customers.jsonl")
    refused = caught.value
    assert [error.field for error in refused.errors] == [
        "first_name", "currency", "bill.usage[0].period", "debt.days_past_due"]
    assert (refused.field, refused.line, refused.customer_id) == ("first_name", 7, "IT-000123")
    assert str(refused).splitlines()[0] == "customers.jsonl:7: customer IT-000123: first_name: must not be empty"
    assert len(str(refused).splitlines()) == 4


def test_sum_message_reads_like_the_house_style() -> None:
    with pytest.raises(RecordErrors) as caught:
        parse_record(changed("bill.total", "120.00"), line=7, source="customers.jsonl")
    assert str(caught.value) == (
        "customers.jsonl:7: customer IT-000123: bill.lines: amounts sum to 123.45, bill.total is 120.00")


def test_refusals_never_repeat_personal_values() -> None:
    obj = base()
    obj["birth_date"] = "02/04/1961"
    obj["last_name"] = "Secretname" * 11
    obj["email"] = ["maria@example.org"]
    text = "\n".join(message for _, message in problems(obj))
    assert "1961" not in text and "Secretname" not in text and "maria@" not in text


def test_a_record_must_be_an_object() -> None:
    assert problems(["IT-000123"]) == [(None, "a record must be a JSON object, got a list")]


def test_records_are_frozen() -> None:
    record = parse_record(base())
    with pytest.raises(ValidationError):
        record.first_name = "Other"
    with pytest.raises(ValidationError):
        record.bill.total = Decimal(0)
    assert isinstance(record.bill.lines, tuple)


def test_refusals_survive_pickling() -> None:
    with pytest.raises(RecordErrors) as caught:
        parse_record(changed("currency", "XXXX"), line=3, source="batch.jsonl")
    copy_ = pickle.loads(pickle.dumps(caught.value))
    assert str(copy_) == str(caught.value)
    assert (copy_.line, copy_.customer_id, copy_.field) == (3, "IT-000123", "currency")


# --- names are text, exactly ----------------------------------------------------------------

def test_tricky_names_are_preserved_byte_for_byte() -> None:
    path = EXAMPLES / "tricky_customers.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = records_in(path)
    assert len(records) == len(raw)
    for obj, record in zip(raw, records, strict=True):
        assert isinstance(record, Record)
        assert record.first_name.encode("utf-8") == obj["first_name"].encode("utf-8")
        assert record.last_name == obj.get("last_name")
    names = {record.first_name for record in records} | {record.last_name for record in records}
    for expected in ["O'Brien", "100%", "Zoë 😀", "<b>Bob</b> & <script>alert(1)</script>",
                     "Back\\slash", 'Robert "Bobby"', "محمد", "Jose\u0301", "  van der Berg  "]:
        assert expected in names
    assert any("%{pts}" in name and "%s" in name for name in names if name)
    assert max(len(record.first_name) for record in records) == 100


def test_names_up_to_100_characters() -> None:
    long_name = ("Maria Francesca Giuseppina Anna Teresa Lucia Benedetta Carolina Antonietta "
                 "Elisabetta Rosalia Chiara")
    assert len(long_name) == 100
    assert parse_record(changed("first_name", long_name)).first_name == long_name
    assert problems(changed("first_name", long_name + "!")) == [
        ("first_name", "must be at most 100 characters, got 101")]


# --- batches --------------------------------------------------------------------------------

BAD_FILE = [  # (line, customer_id, field, part of the message)
    (2, "IT-900002", None, "not valid JSON"),
    (3, "IT-900003", "first_name", "missing"),
    (4, "DE-900004", "currency", "ISO 4217"),
    (5, "DE-900005", "bill.total", "EUR allows at most 2"),
    (7, "IT-900007", "bill.lines", "amounts sum to 61.20, bill.total is 61.25"),
    (8, "EG-900008", "bill.period_start", "after period_end"),
    (9, "US-900009", "bill.usage[0].period", "YYYY-MM"),
    (10, "IT-900001", "customer_id", "already appears at line 1"),
    (11, "US-900011", "debt.plan_offer.installments", "between 2 and 24"),
    (12, "US-900012", "debt.days_past_due", ">= 0"),
    (13, "IT-900013", "nickname", "not a field"),
    (16, "IT-900016", "debt.overdue_total", "greater than zero"),
    (17, "IT-900017", "debt.overdue_total", "greater than zero"),
    (18, "IT-900018", "first_name", "control characters: U+0000 at position 3"),
    (19, "IT-900019", "last_name", "control characters: U+000D at position 6"),
    (20, "IT-900020", "bill.lines[0].label", "control characters: U+0007 at position 8"),
]


def test_bad_records_are_refused_one_by_one_and_the_batch_goes_on() -> None:
    path = EXAMPLES / "bad_customers.jsonl"
    items = list(load_records(path))
    good = [item.customer_id for item in items if isinstance(item, Record)]
    assert good == ["IT-900001", "DE-900006", "US-900015"]
    found = [(error.line, error.customer_id, error.field) for error in refusals(items)]
    assert found == [(line, customer_id, field) for line, customer_id, field, _ in BAD_FILE]
    for error, (*_, message) in zip(refusals(items), BAD_FILE, strict=True):
        assert message in error.message
        assert error.source == str(path)
        assert len(error.errors) == 1


def test_duplicate_customer_ids(tmp_path: Path) -> None:
    second, third = changed("first_name", "Marta"), changed("customer_id", "IT-000124")
    path = write_jsonl(tmp_path / "dup.jsonl", [base(), second, third, base()])
    items = list(load_records(path))
    assert [isinstance(item, Record) for item in items] == [True, False, True, False]
    assert [(e.line, e.customer_id, e.field) for e in refusals(items)] == [
        (2, "IT-000123", "customer_id"), (4, "IT-000123", "customer_id")]


def test_a_duplicate_is_listed_with_the_records_other_problems(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [base(), changed("currency", "EURO")])
    [refused] = refusals(list(load_records(path)))
    assert [error.field for error in refused.errors] == ["customer_id", "currency"]


def test_jsonl_skips_blank_lines_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "gaps.ndjson"
    lines = ["", json.dumps(base(), default=str), "   ", "{not json", "\r",
             json.dumps(changed("customer_id", "B-2"), default=str)]
    path.write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    items = list(load_records(path))
    assert [type(item) for item in items] == [Record, RecordErrors, Record]
    assert items[1].line == 4 and items[1].customer_id is None  # type: ignore[union-attr]


def test_invalid_utf8_is_one_refusal(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(changed("first_name", "Zoë"), default=str, ensure_ascii=False).encode("latin-1") + b"\n"
                     + json.dumps(changed("customer_id", "B-2"), default=str).encode() + b"\n")
    items = list(load_records(path))
    assert isinstance(items[0], RecordErrors) and "UTF-8" in items[0].message
    assert items[0].customer_id == "IT-000123"
    assert isinstance(items[1], Record)


def test_repeated_keys_in_one_object_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text(json.dumps(base(), default=str)[:-1] + ', "currency": "USD"}\n', encoding="utf-8")
    [refused] = load_records(path)
    assert isinstance(refused, RecordErrors) and "'currency' appears twice" in refused.message


def test_loading_is_lazy(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "lazy.jsonl", [base()])
    items = load_records(path)
    path.unlink()  # nothing is read until asked
    with pytest.raises(FileNotFoundError):
        next(items)


def test_unknown_file_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(b"")
    with pytest.raises(RecordError, match=r"use \.jsonl, \.ndjson, \.csv or \.json"):
        list(load_records(path))


# --- CSV ------------------------------------------------------------------------------------

def csv_columns(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            flat.update(csv_columns(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            flat[f"{prefix}{key}"] = json.dumps(value, default=str)
        else:
            flat[f"{prefix}{key}"] = "" if value is None else str(value)
    return flat


def write_csv(path: Path, objects: list[dict[str, Any]], extra_rows: list[list[str]] | None = None) -> Path:
    rows = [csv_columns(obj) for obj in objects]
    header = list(dict.fromkeys(name for row in rows for name in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(name, "") for name in header])
        writer.writerows(extra_rows or [])
    return path


def test_csv_row_numbers_are_physical_lines(tmp_path: Path) -> None:
    first = changed("service_address", "Via Roma 1\n40121 Bologna")  # a quoted cell over two lines
    bad = changed("customer_id", "IT-000124")
    bad["bill"]["total"] = "1.00"
    path = write_csv(tmp_path / "c.csv", [first, bad])
    items = list(load_records(path))
    assert isinstance(items[0], RecordErrors)  # a line break is a control character: refused, at its row
    assert (items[0].line, items[0].customer_id, items[0].field) == (2, "IT-000123", "service_address")
    assert isinstance(items[1], RecordErrors)
    assert (items[1].line, items[1].customer_id, items[1].field) == (4, "IT-000124", "bill.lines")


def test_csv_empty_cells_are_absent_fields(tmp_path: Path) -> None:
    without = changed("debt", None)
    without["customer_id"], without["locale"], without["last_name"] = "IT-000124", None, None
    path = write_csv(tmp_path / "c.csv", [base(), without])
    with_debt, no_debt = load_records(path)
    assert isinstance(with_debt, Record) and with_debt.debt is not None
    assert with_debt.debt.plan_offer is not None and with_debt.debt.plan_offer.installments == 3
    assert isinstance(no_debt, Record)
    assert (no_debt.debt, no_debt.locale, no_debt.last_name) == (None, None, None)
    assert with_debt == parse_record(base())


def test_csv_refusals_name_row_and_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [base()], extra_rows=[])
    text = path.read_text(encoding="utf-8")
    header = next(csv.reader([text.splitlines()[0]]))
    good = next(csv.reader([text.splitlines()[1]]))

    def row(**cells: str) -> list[str]:
        values = dict(zip(header, good, strict=True))
        values |= {name.replace("__", "."): value for name, value in cells.items()}
        return [values[name] for name in header]

    rows = [
        row(customer_id="IT-2", bill__lines="[{not json"),
        row(customer_id="IT-3", debt__days_past_due="4.5"),
        row(customer_id="IT-4", first_name=""),
        row(customer_id="IT-5", tags__segment=""),
        row(customer_id="IT-000123"),
        row(customer_id="IT-7")[:-1],
    ]
    path = write_csv(tmp_path / "c.csv", [base()], extra_rows=rows)
    items = list(load_records(path))
    assert isinstance(items[0], Record) and isinstance(items[4], Record)
    assert items[4].tags == {}
    found = [(e.line, e.customer_id, e.field) for e in refusals(items)]
    assert found == [(3, "IT-2", "bill.lines"), (4, "IT-3", "debt.days_past_due"), (5, "IT-4", "first_name"),
                     (7, "IT-000123", "customer_id"), (8, "IT-7", None)]


def test_csv_integers_come_as_text(tmp_path: Path) -> None:
    [record] = load_records(write_csv(tmp_path / "c.csv", [base()]))
    assert isinstance(record, Record) and record.debt is not None
    assert record.debt.days_past_due == 45 and isinstance(record.debt.days_past_due, int)


def test_csv_unknown_columns_are_refused(tmp_path: Path) -> None:
    obj = base()
    obj["tags"]["region"] = "emilia-romagna"
    obj["iban"] = "IT60X0542811101000000123456"
    [refused] = load_records(write_csv(tmp_path / "c.csv", [obj]))
    assert isinstance(refused, RecordErrors) and [e.field for e in refused.errors] == ["iban"]
    assert "IT60X" not in str(refused)


def test_csv_header_problems_stop_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("customer_id,first_name,first_name\nA,B,C\n", encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        list(load_records(path))
    assert (caught.value.line, caught.value.field) == (1, "first_name")


# --- single files ---------------------------------------------------------------------------

def test_one_record_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "maria.json"
    path.write_text(json.dumps(base(), default=str, indent=2), encoding="utf-8")
    assert load_record_file(path) == parse_record(base())
    assert list(load_records(path)) == [parse_record(base())]


def test_a_bad_json_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "maria.json"
    path.write_text(json.dumps(base(), default=str, indent=2).replace('"EUR",', '"EUR"'), encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        load_record_file(path)
    assert caught.value.line == 12 and caught.value.source == str(path)
    path.write_text(json.dumps(changed("debt.days_past_due", -2), default=str), encoding="utf-8")
    with pytest.raises(RecordError) as refused:
        load_record_file(path)
    assert (refused.value.field, refused.value.customer_id) == ("debt.days_past_due", "IT-000123")


# --- what the renderer gets -----------------------------------------------------------------

PLAIN = (dict, list, str, int, Decimal, date, type(None))


def test_record_values_are_plain() -> None:
    values = record_values(parse_record(base()))
    assert all(isinstance(value, PLAIN) and not isinstance(value, BaseModel) for value in walk(values))
    assert values["locale"] == "it-IT"
    assert values["bill"]["total"] == Decimal("123.45")
    assert values["bill"]["due_date"] == date(2026, 11, 25)
    assert values["bill"]["lines"][0] == {"label": "Energy", "amount": Decimal("80.10")}
    assert values["bill"]["usage"][1] == {"period": "2025-12", "quantity": Decimal("260.0")}
    assert values["debt"]["plan_offer"] == {"installments": 3, "first_due_date": date(2026, 12, 5)}
    assert values["tags"] == {"segment": "residential"}


def test_record_values_fill_absent_optionals_with_none() -> None:
    obj = {key: base()[key] for key in ("customer_id", "first_name", "currency")}
    obj["bill"] = {key: base()["bill"][key] for key in ("period_start", "period_end", "issue_date", "due_date",
                                                          "total")}
    values = record_values(parse_record(obj))
    assert values["debt"] is None and values["locale"] is None and values["last_name"] is None
    assert values["bill"]["lines"] == [] and values["bill"]["usage"] == [] and values["tags"] == {}
    assert set(values) == set(Record.model_fields)


def test_record_values_are_a_copy() -> None:
    record = parse_record(base())
    values = record_values(record)
    values["tags"]["segment"] = "changed"
    values["bill"]["lines"].clear()
    assert record.tags == {"segment": "residential"} and len(record.bill.lines) == 3


@pytest.mark.parametrize(("debt", "total", "due"), [
    ({"overdue_total": "250.00", "days_past_due": 45}, "123.45", Decimal("250.00")),
    (None, "123.45", Decimal("123.45")),
    (None, "-35.45", Decimal("-35.45")),
    (None, "0", Decimal("0")),
])
def test_amount_due(debt: dict[str, Any] | None, total: str, due: Decimal) -> None:
    obj = copy.deepcopy(base())
    obj["debt"], obj["bill"]["total"], obj["bill"]["lines"] = debt, total, None
    assert amount_due(parse_record(obj)) == due


def test_amount_due_on_the_samples() -> None:
    records = {record.customer_id: record for record in records_in(EXAMPLES / "customers.jsonl")}
    assert amount_due(records["DE-000512"]) == Decimal("527.05")  # four overdue invoices
    assert amount_due(records["IT-000123"]) == records["IT-000123"].bill.total
    assert amount_due(records["IT-000342"]) < 0  # in credit


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", ["customers.jsonl", "tricky_customers.jsonl", "customers.csv"])
def test_records_round_trip_through_json_exactly(name: str) -> None:
    """A record written as JSON (one render's --customer file) reads back equal, dates and decimals exact."""
    records = [r for r in load_records(EXAMPLES / name) if isinstance(r, Record)]
    assert records
    for record in records:
        text = record.model_dump_json()
        again = parse_record(json.loads(text))
        assert again == record
        assert '"total":"' in text  # money stays a decimal string, never a binary float
