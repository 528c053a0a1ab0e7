"""Locales: which catalogue language a record gets, its direction, and Babel formatting, cached.

Parsing a Babel locale and its patterns is the slow part of formatting, so each
locale is parsed once per process, and formatted dates and amounts (which
repeat across a campaign: the same due date, the same month names) are cached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from billcast.renderer import parse_locale


def bcp47(locale: Locale) -> str:
    """``ar_EG`` -> ``ar-EG``, for ``<html lang>``."""
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


def direction(locale: Locale) -> str:
    return "rtl" if locale.character_order == "right-to-left" else "ltr"


def pick_language(available: Collection[str], locale: str, default: str) -> str:
    """The best of ``available`` for a locale: the exact tag, then its language, then ``default``."""
    for candidate in (locale, locale.replace("_", "-"), parse_locale(locale).language):
        if candidate in available:
            return candidate
    return default


class Formatter:
    """Amounts, dates, months and numbers for one locale (get one with :func:`formatter`)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.locale = parse_locale(tag)

    def money(self, amount: Decimal, currency: str) -> str:
        return _money(self.tag, amount, currency)

    def date(self, value: dt.date, format: str = "long") -> str:
        return _date(self.tag, value, format)

    def month(self, period: str | dt.date, format: str = "MMMM y") -> str:
        """A billing month (``YYYY-MM`` or a date) as words, like ``ottobre 2026``."""
        if isinstance(period, dt.date):
            period = period.isoformat()[:7]
        return _month(self.tag, period, format)

    def number(self, value: Decimal | int | float) -> str:
        return _number(self.tag, value)

    def interval(self, start: dt.date, end: dt.date, skeleton: str = "yMMMd") -> str:
        """A date range written the locale's way, like ``1–31 ott 2026``."""
        return _interval(self.tag, start, end, skeleton)

    def plural(self, count: int) -> str:
        """The CLDR plural category of ``count`` (``one``, ``few``, ``other``...)."""
        return self.locale.plural_form(count)


@lru_cache(maxsize=64)
def formatter(tag: str) -> Formatter:
    return Formatter(tag)


@lru_cache(maxsize=8192)
def _money(tag: str, amount: Decimal, currency: str) -> str:
    return babel_numbers.format_currency(amount, currency, locale=parse_locale(tag))


@lru_cache(maxsize=4096)
def _date(tag: str, value: dt.date, format: str) -> str:
    return babel_dates.format_date(value, format=format, locale=parse_locale(tag))


@lru_cache(maxsize=4096)
def _month(tag: str, period: str, format: str) -> str:
    return babel_dates.format_date(dt.date.fromisoformat(period + "-01"), format=format, locale=parse_locale(tag))


@lru_cache(maxsize=8192)
def _number(tag: str, value: Decimal | int | float) -> str:
    return babel_numbers.format_decimal(value, locale=parse_locale(tag))


@lru_cache(maxsize=1024)
def _interval(tag: str, start: dt.date, end: dt.date, skeleton: str) -> str:
    return babel_dates.format_interval(start, end, skeleton, locale=parse_locale(tag))
