"""Customer records: the input contract of ``docs/RECORDS.md``, parsed at the edge.

A record is one customer's bill and, where there are any, their arrears. Batches
arrive as JSON Lines or flattened CSV; a single render reads one JSON object.
Everything is checked here, once: money becomes exact ``Decimal`` (never a
binary float), dates become ``datetime.date``, and a record that breaks a rule
is refused on its own with an :class:`RecordErrors` naming the line, the
customer and the dotted field of every problem, while the batch goes on.

Error messages never repeat the value of a personal field (names, email,
birth date, postcode, account number, address): they end up in logs.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Self, TypeGuard

from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, list_currencies
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from renderer import RecordError

__all__ = [
    "Bill", "BillLine", "Debt", "Invoice", "PlanOffer", "Record", "RecordErrors", "UsagePeriod",
    "amount_due", "load_record_file", "load_records", "parse_record", "record_values",
]

NAME_MAX = 100
USAGE_MAX = 36
AMOUNT_INTEGER_DIGITS = 15  # sanity bound: keeps every sum well inside Decimal's 28 digits
PERSONAL_FIELDS = frozenset(
    {"first_name", "last_name", "email", "birth_date", "postcode", "account_number", "service_address"})
CSV_JSON_COLUMNS = frozenset({"bill.lines", "bill.usage", "debt.invoices"})

_CUSTOMER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DECIMAL_TEXT = re.compile(r"-?\d+(?:\.\d+)?")
_WHOLE_TEXT = re.compile(r"[+-]?\d{1,18}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])")
_SNIFF_ID = re.compile(rb'"customer_id"\s*:\s*"([A-Za-z0-9._-]{1,64})"')

Problem = tuple[str, str]  # (dotted field relative to the model, message)


class RecordErrors(RecordError):
    """A refused record: the first problem in its own fields, every problem in ``errors``."""

    def __init__(self, errors: Sequence[RecordError]) -> None:
        if not errors:
            raise ValueError("RecordErrors needs at least one error")
        first = errors[0]
        super().__init__(first.message, line=first.line, customer_id=first.customer_id,
                         field=first.field, source=first.source)
        self.errors: list[RecordError] = list(errors)

    def __str__(self) -> str:
        return "\n".join(RecordError.__str__(error) for error in self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


# --- value checks shared by the models ------------------------------------------------------

def _rule(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _money(value: object, info: ValidationInfo) -> Decimal:
    """An exact amount from a decimal string, an int or a JSON number read as Decimal.

    When the validation context names the record's currency (``parse_record`` does),
    its minor digits are checked here, at the amount's own field.
    """
    amount = _exact_amount(value)
    currency = info.context.get("currency") if isinstance(info.context, dict) else None
    if isinstance(currency, str) and currency in _currencies() and _too_many_decimals(amount, currency):
        raise _rule("money", _too_precise(amount, currency))
    return amount


def _exact_amount(value: object) -> Decimal:
    if isinstance(value, float):
        raise _rule("money", "is a binary float; amounts must be read exactly "
                    "(a decimal string, or JSON loaded with parse_float=Decimal)")
    if _is_int(value) or (isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _rule("money", 'must be an amount such as "123.45" or 123.45 (a dot for decimals, '
                    "no thousands separators)")
    if not value.is_zero() and value.adjusted() >= AMOUNT_INTEGER_DIGITS:
        raise _rule("money", f"is too large: at most {AMOUNT_INTEGER_DIGITS} digits before the point")
    return value


def _too_many_decimals(amount: Decimal, currency: str) -> bool:
    allowed = _precision(currency)
    exponent = amount.as_tuple().exponent
    return not (isinstance(exponent, int) and exponent >= -allowed) and _decimals(amount) > allowed


def _too_precise(amount: Decimal, currency: str) -> str:
    return f"has {_decimals(amount)} decimals; {currency} allows at most {_precision(currency)}"


def _quantity(value: object) -> Decimal:
    """A usage quantity: any finite number >= 0, kept exact."""
    if isinstance(value, float):
        value = Decimal(repr(value))  # not money: the shortest repr is the number that was written
    elif _is_int(value) or (isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise _rule("quantity", "must be a number such as 210.5")
    if value < 0:
        raise _rule("quantity", "must be >= 0")
    return value


def _whole(value: object) -> int:
    """An integer from a JSON integer or, as CSV gives it, a string of digits."""
    if _is_int(value):
        return value
    if isinstance(value, str) and _WHOLE_TEXT.fullmatch(value):
        return int(value)
    raise _rule("whole_number", "must be a whole number")


def _calendar_date(value: object) -> date:
    """An ISO 8601 calendar date, ``YYYY-MM-DD``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _rule("date", "is not a real calendar date") from None
    raise _rule("date", "must be an ISO 8601 calendar date such as 2026-11-25")


def _period(value: object) -> str:
    if isinstance(value, str) and _PERIOD.fullmatch(value):
        return value
    raise _rule("period", "must be a month written YYYY-MM, such as 2026-10")


def _none_as_empty(empty: Callable[[], object]) -> BeforeValidator:
    return BeforeValidator(lambda value: empty() if value is None else value)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _precision(currency: str) -> int:
    return int(get_currency_precision(currency))


@lru_cache(maxsize=1024)
def _known_locale(tag: str) -> bool:
    try:
        Locale.parse(tag, sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return False
    return True


def _decimals(amount: Decimal) -> int:
    """How many decimals ``amount`` needs (trailing zeros do not count)."""
    if amount.is_zero():
        return 0
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    while exponent < 0 and digits and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return max(0, -exponent)


def _raise_problems(problems: list[Problem]) -> None:
    if problems:
        summary = "; ".join(f"{field}: {message}" for field, message in problems)
        raise PydanticCustomError("rules", "{summary}", {"summary": summary, "problems": problems})


_AS_TEXT = PlainSerializer(str, when_used="json")  # exact decimals stay exact in JSON
Money = Annotated[Decimal, PlainValidator(_money), _AS_TEXT]
Quantity = Annotated[Decimal, PlainValidator(_quantity), _AS_TEXT]
# The serializer is spelled out: with a plain validator pydantic would warn when writing JSON.
CalendarDate = Annotated[date, PlainValidator(_calendar_date), PlainSerializer(date.isoformat, when_used="json")]
Period = Annotated[str, PlainValidator(_period)]
Text = Annotated[str, Field(strict=True)]
Name = Annotated[str, Field(strict=True, max_length=NAME_MAX)]


# --- the models -----------------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BillLine(_Model):
    """One line of the bill's breakdown."""

    label: Annotated[str, Field(strict=True, min_length=1)]
    amount: Money


class UsagePeriod(_Model):
    """Consumption in one calendar month."""

    period: Period
    quantity: Quantity


class Bill(_Model):
    """The bill of this cycle; ``lines`` (when present) sum exactly to ``total``."""

    number: Text | None = None
    period_start: CalendarDate
    period_end: CalendarDate
    issue_date: CalendarDate
    due_date: CalendarDate
    total: Money
    lines: Annotated[tuple[BillLine, ...], _none_as_empty(tuple)] = ()
    unit: Text | None = None
    usage: Annotated[tuple[UsagePeriod, ...], _none_as_empty(tuple), Field(max_length=USAGE_MAX)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[Problem] = []
        if self.period_start > self.period_end:
            problems.append(("period_start", f"{self.period_start} is after period_end {self.period_end}"))
        if self.lines:
            total = sum((line.amount for line in self.lines), Decimal(0))
            if total != self.total:
                problems.append(("lines", f"amounts sum to {total}, bill.total is {self.total}"))
        for index in range(1, len(self.usage)):
            before, this = self.usage[index - 1].period, self.usage[index].period
            if this <= before:
                problems.append((f"usage[{index}].period",
                                 f"{this} does not come after {before}: periods go oldest first, once each"))
        _raise_problems(problems)
        return self


class Invoice(_Model):
    """An overdue invoice behind the debt."""

    number: Text | None = None
    due_date: CalendarDate
    amount: Money


class PlanOffer(_Model):
    """A payment plan the customer may choose instead of paying in full."""

    installments: Annotated[int, PlainValidator(_whole)]
    first_due_date: CalendarDate

    @field_validator("installments")
    @classmethod
    def _between(cls, value: int) -> int:
        if not 2 <= value <= 24:
            raise _rule("range", "must be between 2 and 24")
        return value


class Debt(_Model):
    """Arrears: what is overdue, for how long, and the plan on offer if any."""

    overdue_total: Money
    days_past_due: Annotated[int, PlainValidator(_whole)]
    invoices: Annotated[tuple[Invoice, ...], _none_as_empty(tuple)] = ()
    plan_offer: PlanOffer | None = None
    deadline: CalendarDate | None = None  # Billcast's addition: pay by this date before further steps

    @field_validator("days_past_due")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise _rule("range", "must be >= 0")
        return value


class Record(_Model):
    """One customer: who they are, their bill, and their arrears where they have any."""

    customer_id: Text
    locale: Text | None = None
    first_name: Name
    last_name: Name | None = None
    email: Text | None = None
    birth_date: CalendarDate | None = None
    postcode: Text | None = None
    account_number: Text | None = None
    service_address: Text | None = None
    currency: Text
    bill: Bill
    debt: Debt | None = None
    tags: Annotated[dict[Text, Text], _none_as_empty(dict)] = Field(default_factory=dict)

    @field_validator("customer_id")
    @classmethod
    def _customer_id(cls, value: str) -> str:
        if not _CUSTOMER_ID.fullmatch(value):
            raise _rule("customer_id", "must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not _known_locale(value):
            raise _rule("locale", "must be a BCP 47 locale tag such as it-IT, de-DE, ar-EG or en-US")
        return value

    @field_validator("first_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _rule("blank", "must not be empty")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value in _currencies():
            return value
        if value.upper() in _currencies():
            raise _rule("currency", f"must be written in capitals: {value.upper()}")
        raise _rule("currency", "must be an ISO 4217 currency code such as EUR, USD or EGP")

    @model_validator(mode="after")
    def _minor_digits(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, dict) and info.context.get("currency") == self.currency:
            return self  # each amount was checked at its own field
        problems = [(field, _too_precise(amount, self.currency))
                    for field, amount in _amounts(self) if _too_many_decimals(amount, self.currency)]
        _raise_problems(problems)
        return self


def _amounts(record: Record) -> Iterator[tuple[str, Decimal]]:
    """Every amount of a record with its dotted field."""
    yield "bill.total", record.bill.total
    for index, line in enumerate(record.bill.lines):
        yield f"bill.lines[{index}].amount", line.amount
    if record.debt is not None:
        yield "debt.overdue_total", record.debt.overdue_total
        for index, invoice in enumerate(record.debt.invoices):
            yield f"debt.invoices[{index}].amount", invoice.amount


# --- from pydantic's errors to ours ---------------------------------------------------------

_MESSAGES = {
    "missing": "is missing; it is required",
    "extra_forbidden": "is not a field of the record contract (check its spelling; extra data goes in tags)",
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}
_NO_VALUE_SHOWN = frozenset({"missing", "extra_forbidden", "string_too_long", "too_long", "rules"})


def _dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters, got {len(error['input'])}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items, got {ctx['actual_length']}"
    message = _MESSAGES.get(kind, str(error["msg"]))
    personal = bool(error["loc"]) and error["loc"][0] in PERSONAL_FIELDS
    if kind not in _NO_VALUE_SHOWN and not personal:
        message += f", got {_shown(error['input'])}"
    return message


def _problems(exc: ValidationError) -> Iterator[Problem]:
    for error in exc.errors(include_url=False):
        prefix = _dotted(error["loc"])
        if error["type"] == "rules":
            for field, message in error["ctx"]["problems"]:
                yield (f"{prefix}.{field}" if prefix else field), message
        else:
            yield prefix, _message(error)


def _readable_id(obj: object) -> str | None:
    """The record's customer_id when it can be read (and is a valid one)."""
    value = obj.get("customer_id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) and _CUSTOMER_ID.fullmatch(value) else None


# --- public API -----------------------------------------------------------------------------

def parse_record(obj: dict[str, Any], *, line: int | None = None, source: str | None = None) -> Record:
    """Validate one record's mapping (as JSON gives it); raise :class:`RecordErrors` listing every problem."""
    customer_id = _readable_id(obj)
    if not isinstance(obj, dict):
        raise RecordErrors([RecordError(f"a record must be a JSON object, got {_shown(obj)}",
                                        line=line, source=source)])
    try:
        return Record.model_validate(obj, context={"currency": obj.get("currency")})
    except ValidationError as exc:
        errors = [RecordError(message, line=line, customer_id=customer_id, field=field or None, source=source)
                  for field, message in _problems(exc)]
        raise RecordErrors(errors) from None


def load_record_file(path: str | os.PathLike[str]) -> Record:
    """Read one record from a file holding one JSON object (a single render)."""
    source = os.fspath(path)
    return parse_record(_read_json_file(Path(path), source), source=source)


def load_records(path: str | os.PathLike[str]) -> Iterator[Record | RecordErrors]:
    """Stream a batch: each record, or the :class:`RecordErrors` that refuses it, in file order.

    ``.jsonl``/``.ndjson`` (JSON Lines), ``.csv`` (flattened, see the spec) or ``.json``
    (one object). A customer_id seen earlier in the batch refuses the later record.
    Raises :class:`RecordError` only for a problem with the whole file (its type, a CSV
    header), and ``OSError`` when it cannot be read at all.
    """
    source = os.fspath(path)
    suffix = Path(path).suffix.lower()
    readers = {".jsonl": _jsonl_objects, ".ndjson": _jsonl_objects, ".csv": _csv_objects, ".json": _json_object}
    if suffix not in readers:
        raise RecordError(f"cannot read {suffix or 'a file without a suffix'}: use .jsonl, .ndjson, .csv or .json",
                          source=source)
    seen: dict[str, int] = {}
    for line, item in readers[suffix](Path(path), source):
        yield item if isinstance(item, RecordErrors) else _checked(item, line, source, seen)


def record_values(record: Record) -> dict[str, Any]:
    """The plain mapping the renderer's templates see: dicts, lists, str, Decimal, date, int, None."""
    values = _plain(record.model_dump())
    assert isinstance(values, dict)
    return values


def amount_due(record: Record) -> Decimal:
    """What the customer is asked to pay: the overdue total when in arrears, else the bill total.

    A bill total of zero or below (a credit) is returned as is: nothing to pay.
    """
    if record.debt is not None and record.debt.overdue_total > 0:
        return record.debt.overdue_total
    return record.bill.total


# --- reading files --------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _checked(obj: object, line: int, source: str, seen: dict[str, int]) -> Record | RecordErrors:
    """Parse one batch record and refuse it if its customer_id was used earlier in the batch."""
    errors = _duplicate(obj, line, source, seen)
    try:
        record = parse_record(obj, line=line, source=source)  # type: ignore[arg-type]
    except RecordErrors as refused:
        return RecordErrors(errors + refused.errors)
    return RecordErrors(errors) if errors else record


def _duplicate(obj: object, line: int, source: str, seen: dict[str, int]) -> list[RecordError]:
    customer_id = _readable_id(obj)
    if customer_id is None:
        return []
    if customer_id not in seen:
        seen[customer_id] = line
        return []
    return [RecordError(f"is a duplicate: this customer already appears at line {seen[customer_id]}",
                        line=line, customer_id=customer_id, field="customer_id", source=source)]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def _loads(text: str) -> Any:
    """JSON with exact numbers: decimals as Decimal, no NaN/Infinity, no repeated keys."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    return f"not valid JSON: {exc}"


Item = tuple[int, object]  # (line, parsed JSON value or the RecordErrors refusing it)


def _bad(message: str, line: int, source: str, customer_id: str | None = None,
         field: str | None = None) -> RecordErrors:
    return RecordErrors([RecordError(message, line=line, customer_id=customer_id, field=field, source=source)])


def _jsonl_objects(path: Path, source: str) -> Iterator[Item]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            sniffed = _SNIFF_ID.search(raw)
            customer_id = sniffed.group(1).decode() if sniffed else None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, _bad("not valid UTF-8 text", number, source, customer_id)
                continue
            text = (text.removeprefix("\ufeff") if number == 1 else text).rstrip("\r\n")
            if not text.strip():
                continue
            try:
                yield number, _loads(text)
            except (ValueError, RecursionError) as exc:
                yield number, _bad(_json_problem(exc) if isinstance(exc, ValueError) else "nested too deeply",
                                   number, source, customer_id)


def _json_object(path: Path, source: str) -> Iterator[Item]:
    try:
        yield 1, _read_json_file(path, source)
    except RecordErrors as refused:
        yield 1, refused


def _read_json_file(path: Path, source: str) -> Any:
    try:
        return _loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise RecordErrors([RecordError("not valid UTF-8 text", source=source)]) from None
    except ValueError as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise RecordErrors([RecordError(_json_problem(exc), line=line, source=source)]) from None


class _CellError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _csv_objects(path: Path, source: str) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, None)
        if header is None:
            return
        _check_header(header, source)
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, _bad(f"not valid CSV: {exc}", line, source)
                continue
            if any(row):
                yield line, _csv_record(header, row, line, source)


def _check_header(header: list[str], source: str) -> None:
    for index, name in enumerate(header, start=1):
        if not name:
            raise RecordError(f"column {index} of the header has no name", line=1, source=source)
        if header.index(name) != index - 1:
            raise RecordError("column appears twice in the header", line=1, field=name, source=source)


def _csv_record(header: list[str], row: list[str], line: int, source: str) -> object:
    customer_id = dict(zip(header, row, strict=False)).get("customer_id")
    customer_id = customer_id if customer_id and _CUSTOMER_ID.fullmatch(customer_id) else None
    if len(row) != len(header):
        return _bad(f"row has {len(row)} cells, the header has {len(header)}", line, source, customer_id)
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return _bad("not valid UTF-8 text", line, source, customer_id)
    try:
        return _unflatten(header, row)
    except _CellError as exc:
        return _bad(exc.message, line, source, customer_id, exc.field)


def _unflatten(header: list[str], row: list[str]) -> dict[str, Any]:
    """Dotted columns to nested objects; JSON list columns parsed; empty cells left out."""
    obj: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=True):
        if cell == "":
            continue
        keys = name.split(".", 1) if name.startswith("tags.") else name.split(".")
        place = obj
        for key in keys[:-1]:
            place = place.setdefault(key, {})
            if not isinstance(place, dict):
                raise _CellError(name, f"conflicts with the column {key}")
        if keys[-1] in place:
            raise _CellError(name, "conflicts with another column")
        place[keys[-1]] = _cell_value(name, cell)
    return obj


def _cell_value(name: str, cell: str) -> Any:
    if name not in CSV_JSON_COLUMNS:
        return cell
    try:
        return _loads(cell)
    except ValueError as exc:
        raise _CellError(name, f"cell is {_json_problem(exc)}") from None
