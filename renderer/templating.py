"""Template expressions in storyboards: sandboxed Jinja2 with locale-aware filters.

A storyboard can read the values it is given and format them; it cannot reach
Python internals, files, or anything it was not handed. A missing field is an
error (``StrictUndefined``), never an empty string on a customer's screen.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import StrictUndefined, Template, nodes, pass_context
from jinja2.sandbox import safe_range

from .sandbox import BoundedSandbox


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


def _locale_of(ctx: Any) -> Locale:
    return parse_locale(ctx.get("locale") or "en-US")


@pass_context
def _money(ctx: Any, value: Any, currency: str) -> str:
    return babel_numbers.format_currency(_decimal(value), currency, locale=_locale_of(ctx))


@pass_context
def _date_filter(ctx: Any, value: Any, format: str = "long") -> str:
    return babel_dates.format_date(_date(value), format=format, locale=_locale_of(ctx))


@pass_context
def _month(ctx: Any, value: Any, format: str = "MMMM y") -> str:
    return babel_dates.format_date(_date(value), format=format, locale=_locale_of(ctx))


@pass_context
def _number(ctx: Any, value: Any, format: str | None = None) -> str:
    return babel_numbers.format_decimal(_decimal(value), format=format, locale=_locale_of(ctx))


@pass_context
def _percent(ctx: Any, value: Any) -> str:
    return babel_numbers.format_percent(_decimal(value), locale=_locale_of(ctx))


_FORMATTERS = {"money": _money, "date": _date_filter, "month": _month, "number": _number, "percent": _percent}


@lru_cache(maxsize=1)
def environment() -> BoundedSandbox:
    """The one sandboxed environment; filters format for the ``locale`` in each render's values."""
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    env.add_filters(**_FORMATTERS)
    env.globals["range"] = safe_range  # at most 100,000 items, like Jinja's own sandbox
    return env


@lru_cache(maxsize=8192)
def compiled_template(source: str) -> Template:
    """A compiled template; a batch compiles each storyboard text once per process."""
    return environment().from_string(source)


@lru_cache(maxsize=2048)
def compiled_expression(source: str) -> Any:
    return environment().compile_expression(source, undefined_to_none=False)


def format_with(locale: str, name: str, value: Any, *args: Any) -> str:
    """Apply one of the filters outside a template (charts label their bars with these)."""
    return _FORMATTERS[name]({"locale": locale}, value, *args)


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


def translation_keys(ast: nodes.Template) -> set[str]:
    """The ``t.<key>`` names a parsed template reads, for checking them before any render."""
    keys: set[str] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "t"):
            continue
        if isinstance(node, nodes.Getattr):
            keys.add(node.attr)
        elif isinstance(node.arg, nodes.Const):
            keys.add(str(node.arg.value))
    return keys


_FORMAT_INTERNAL = re.compile(r"\{[^{}]*[.\[]_")
_INTERNAL = "names starting with _ are Python internals, which storyboard texts cannot read"


def sandbox_refusals(ast: nodes.Template) -> list[tuple[int, str]]:
    """What the sandbox would refuse in a parsed template, wherever it is written (also in a branch no
    value ever takes), as (template line, message): Python internals, ``self``, unknown filters (``attr``),
    recursive loops, includes."""
    found: list[tuple[int, str]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Include,
                              nodes.Import, nodes.FromImport, nodes.Extends, nodes.For)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            found.append((node.lineno, f"reads {node.attr!r}: {_INTERNAL}"))
        elif isinstance(node, nodes.Getattr) and node.attr in ("format", "format_map") \
                and isinstance(node.node, nodes.Const) and _FORMAT_INTERNAL.search(str(node.node.value)):
            found.append((node.lineno, f"a format field reads a name starting with _: {_INTERNAL}"))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and str(node.arg.value).startswith("_"):
            found.append((node.lineno, f"reads {node.arg.value!r}: {_INTERNAL}"))
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            found.append((node.lineno, "the attr filter is not available in storyboard texts: write a.b"))
        elif isinstance(node, nodes.Filter) and (node.name.startswith("_") or node.name not in environment().filters):
            found.append((node.lineno, f"no filter named {node.name!r} in storyboard texts; there are "
                                       f"{', '.join(sorted(n for n in environment().filters if n[0] != '_'))}"))
        elif isinstance(node, nodes.For) and node.recursive:
            found.append((node.lineno, "recursive loops are not available in storyboard texts"))
        elif isinstance(node, nodes.Name) and node.name == "self":
            found.append((node.lineno, "'self' is the template itself, which storyboard texts cannot read"))
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            found.append((node.lineno, "storyboard texts cannot include, import or extend templates or files"))
    return found
