"""Customer records: the input contract of ``docs/RECORDS.md``, parsed at the edge.

A record is one customer's bill and, where there are any, their arrears
(``record_files`` reads them from JSON Lines, flattened CSV or one JSON object).
Everything is checked here, once: money becomes exact ``Decimal`` (never a
binary float), dates become ``datetime.date``, and a record that breaks a rule
is refused on its own with an :class:`RecordErrors` naming the line, the
customer and the dotted field of every problem, while the batch goes on.

Error messages never repeat the value of a personal field (names, email,
birth date, postcode, account number, address): they end up in logs.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Annotated, Any, Self, TypeGuard

from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, list_currencies
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PlainValidator,
                      ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from billcast.renderer import RecordError

from .contact import TimeZoneName

__all__ = [
    "Bill", "BillLine", "Debt", "Invoice", "PlanOffer", "Record", "RecordErrors", "UsagePeriod",
    "amount_due", "parse_record", "record_values",
]

NAME_MAX = 100
TEXT_MAX = 200  # every other text field
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
def known_locale(tag: str) -> bool:
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


def _printable(value: str) -> str:
    """No control characters (Unicode category Cc: NUL, CR, LF, BEL, ...) in any text: they would reach
    the page, the captions and the video as they are."""
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise _rule("control", f"must not contain control characters: U+{ord(char):04X} at position {index + 1}")
    return value


Text = Annotated[str, Field(strict=True, max_length=TEXT_MAX), AfterValidator(_printable)]
Name = Annotated[str, Field(strict=True, max_length=NAME_MAX), AfterValidator(_printable)]


# --- the models -----------------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BillLine(_Model):
    """One line of the bill's breakdown."""

    label: Annotated[Text, Field(min_length=1)]
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

    @field_validator("overdue_total")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise _rule("range", "must be greater than zero: a customer with nothing overdue has no debt "
                                 "(leave debt out, or null)")
        return value

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
    timezone: TimeZoneName | None = None  # send windows apply in it

    @field_validator("customer_id")
    @classmethod
    def _customer_id(cls, value: str) -> str:
        if not _CUSTOMER_ID.fullmatch(value):
            raise _rule("customer_id", "must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not known_locale(value):
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
_NO_VALUE_SHOWN = frozenset({"missing", "extra_forbidden", "string_too_long", "too_long", "rules", "control"})


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


def record_values(record: Record) -> dict[str, Any]:
    """The plain mapping the renderer's templates see: dicts, lists, str, Decimal, date, int, None."""
    values = _plain(record.model_dump())
    assert isinstance(values, dict)
    return values


def amount_due(record: Record) -> Decimal:
    """What the customer is asked to pay: the overdue total when in arrears, else the bill total.

    A bill total of zero or below (a credit) is returned as is: nothing to pay. (An overdue total is
    always above zero: the record contract refuses any other.)
    """
    if record.debt is not None:
        return record.debt.overdue_total
    return record.bill.total



# --- the values handed on ----------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
