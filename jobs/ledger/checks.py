"""Checks at the edge: each returns the value a call may store, or raises a LedgerError naming call and field."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeGuard

from .model import LedgerError
from .schema import AMOUNT_TEXT_MAX

_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def is_token(value: object) -> TypeGuard[str]:
    """Whether ``value`` has a token's shape (secrets.token_urlsafe(16))."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def hint(token: str) -> str:
    """A token is a secret: messages show only its first characters."""
    return token[:4] + "…"


def token(call: str, value: object) -> str:
    if not is_token(value):
        raise LedgerError("must be 22 URL-safe characters (secrets.token_urlsafe(16))", where=call, field="token")
    return value


def currency(call: str, value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise LedgerError(f"must be a 3-letter ISO 4217 code such as EUR; got {value!r}", where=call, field="currency")
    return value


def one_of(call: str, field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LedgerError(f"must be one of {', '.join(allowed)}; got {value!r}", where=call, field=field)
    return str(value)


def text(call: str, field: str, value: object, *, empty_ok: bool = False, limit: int = 200) -> str:
    if not isinstance(value, str) or (not value and not empty_ok) or len(value) > limit:
        raise LedgerError(f"must be a{'' if empty_ok else ' non-empty'} string of at most {limit} characters; "
                          f"got {type(value).__name__}", where=call, field=field)
    return value


def optional_text(call: str, field: str, value: object, *, limit: int) -> str | None:
    return None if value is None else text(call, field, value, limit=limit)


def integer(call: str, field: str, value: object, *, least: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LedgerError(f"must be an integer; got {type(value).__name__}", where=call, field=field)
    if least is not None and value < least:
        raise LedgerError(f"must be at least {least}; got {value}", where=call, field=field)
    return value


def optional_integer(call: str, field: str, value: object, *, least: int) -> int | None:
    if value is None:
        return None
    number = integer(call, field, value)
    if number < least:
        raise LedgerError(f"must be at least {least} (or None); got {number}", where=call, field=field)
    return number


def amount(call: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or len(str(value)) > AMOUNT_TEXT_MAX:
        raise LedgerError(f"must be a finite Decimal (never a float); got {type(value).__name__} {value!r}",
                          where=call, field="amount_due")
    return value


def aware(call: str, field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise LedgerError("must be a timezone-aware datetime", where=call, field=field)
    return value.astimezone(UTC)


def optional_date(call: str, field: str, value: object) -> date | None:
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise LedgerError(f"must be a calendar date (datetime.date) or None; got {type(value).__name__}",
                          where=call, field=field)
    return value
