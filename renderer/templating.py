"""Template expressions in storyboards: sandboxed Jinja2 with locale-aware filters.

A storyboard can read the values it is given and format them; it cannot reach
Python internals, files, or anything it was not handed. A missing field is an
error (``StrictUndefined``), never an empty string on a customer's screen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


@lru_cache(maxsize=64)
def parse_locale(tag: str) -> Locale:
    """A Babel locale from a BCP 47 tag (``ar-EG``) or a POSIX one (``ar_EG``)."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse("en_US")


def is_rtl(tag: str) -> bool:
    return parse_locale(tag).character_order == "right-to-left"


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if len(value) == 7:  # a billing period, YYYY-MM
            return dt.date.fromisoformat(value + "-01")
        return dt.date.fromisoformat(value)
    raise ValueError(f"not a date: {value!r}")


def make_environment(locale: str) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment whose filters format for ``locale``."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                        trim_blocks=True, lstrip_blocks=True)
    loc = parse_locale(locale)

    def money(value: Any, currency: str, digits: bool = True) -> str:
        amount = _decimal(value)
        if digits:
            return babel_numbers.format_currency(amount, currency, locale=loc)
        return babel_numbers.format_currency(amount, currency, locale=loc, format="¤#,##0",
                                             currency_digits=False)

    def date(value: Any, format: str = "long") -> str:
        return babel_dates.format_date(_date(value), format=format, locale=loc)

    def month(value: Any, format: str = "MMMM y") -> str:
        return babel_dates.format_date(_date(value), format=format, locale=loc)

    def number(value: Any, format: str | None = None) -> str:
        return babel_numbers.format_decimal(_decimal(value), format=format, locale=loc)

    def percent(value: Any) -> str:
        return babel_numbers.format_percent(_decimal(value), locale=loc)

    env.filters.update(money=money, date=date, month=month, number=number, percent=percent)
    env.globals.clear()
    env.globals["range"] = range
    return env


class LazyTranslations(Mapping):
    """``t.key`` in a template: the translated text, itself rendered on first use."""

    def __init__(self, texts: Mapping[str, str], render: Any) -> None:
        self._texts = texts
        self._render = render
        self._done: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key not in self._done:
            self._done[key] = self._render(key, self._texts[key])
        return self._done[key]

    def __iter__(self):
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def translation_keys(env: ImmutableSandboxedEnvironment, source: str) -> set[str]:
    """The ``t.<key>`` names a template reads, for checking them before any render."""
    keys: set[str] = set()
    for node in env.parse(source).find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "t":
            keys.add(node.attr)
    for node in env.parse(source).find_all(nodes.Getitem):
        if isinstance(node.node, nodes.Name) and node.node.name == "t" and isinstance(node.arg, nodes.Const):
            keys.add(str(node.arg.value))
    return keys
