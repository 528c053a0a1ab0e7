"""Which characters a page's fonts must draw: its own text, and what any page in its language may show.

A page's fonts are cut to ``page_characters(body)`` (the text content of the
rendered body) together with ``language_characters(...)``: printable ASCII,
every text of the page's catalogue, the locale's month names and the digits,
signs and currency symbol Babel writes amounts with, and what ``site.js`` puts in
the page (the player's clock). The second part is the same for every page of a
language and currency, so most pages of a campaign share one set, and so one
subset, and a page's text can change (paid, a date in another month) without
needing a glyph it lacks.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from functools import lru_cache

from .catalog import Messages
from .locales import Formatter

ASCII = "".join(chr(cp) for cp in range(0x20, 0x7F)) + "\u00a0\u202f"  # printable ASCII and the no-break spaces
SCRIPT = "0123456789:/"  # site.js writes the player's clock, "1:05 / 2:30"
_SKIPPED = re.compile(r"<(script|style|title)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_ALT = re.compile(r' alt="([^"]*)"')  # the templates quote every attribute with "
_TAG = re.compile(r"<[^>]*>")
_PROBE = Decimal("-1234567890.5")


def page_characters(markup: str) -> frozenset[str]:
    """The characters of an HTML fragment's text as a reader sees it (and of its images' ``alt``)."""
    shown = _SKIPPED.sub(" ", markup)
    alts = " ".join(_ALT.findall(shown))
    return frozenset(html.unescape(_TAG.sub(" ", shown) + " " + alts))


def language_characters(messages: Messages, fmt: Formatter, currency: str) -> frozenset[str]:
    """What any page in this catalogue, locale and currency may show, whoever it is for."""
    return messages.characters | _locale(fmt.tag, currency)


@lru_cache(maxsize=256)
def _locale(tag: str, currency: str) -> frozenset[str]:
    fmt = Formatter(tag)
    months = fmt.locale.months
    names = [name for context in months.values() for width in context.values() for name in width.values()]
    samples = [fmt.number(_PROBE), fmt.money(_PROBE, currency), *names]
    return frozenset(ASCII + SCRIPT + "".join(samples))
