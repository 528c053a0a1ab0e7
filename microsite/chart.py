"""The usage chart's geometry: bars in an SVG viewBox, worked out here so the template only draws.

Right-to-left pages run the months from right to left, like the video's chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .locales import Formatter

WIDTH, HEIGHT = 520, 230
TOP, BOTTOM, SIDE = 40, 34, 8  # room for the value above the current bar and the months below
MAX_LABELS = 7  # more bars than this label every other month (the current one always)


@dataclass(frozen=True)
class ChartBar:
    x: str  # SVG numbers, already written out
    y: str
    width: str
    height: str
    center: str
    role: str  # current | last_year | other
    month: str  # short month name under the bar, or "" where skipped
    anchor: str  # where the value above the bar is anchored: start | middle | end (the SVG is laid out ltr)
    value_x: str
    value: str  # the formatted quantity with its unit (shown above the current bar)


@dataclass(frozen=True)
class UsageRow:
    month: str  # month and year, for the table
    quantity: str


@dataclass(frozen=True)
class UsageChart:
    bars: tuple[ChartBar, ...]
    rows: tuple[UsageRow, ...]
    has_last_year: bool
    width: int = WIDTH
    height: int = HEIGHT
    baseline: str = f"{HEIGHT - BOTTOM}"
    label_y: str = f"{HEIGHT - 10}"
    value_y: str = f"{TOP - 14}"  # the current month's value, above every bar


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _year_before(period: str) -> str:
    return f"{int(period[:4]) - 1:04d}{period[4:]}"


def usage_chart(usage: Sequence[Mapping[str, Any]], fmt: Formatter, rtl: bool,
                unit: str | None = None) -> UsageChart | None:
    """Bars for each month of ``usage`` (oldest first), or None when there is no history."""
    if not usage:
        return None
    count = len(usage)
    top = max((Decimal(item["quantity"]) for item in usage), default=Decimal(0)) or Decimal(1)
    slot = (WIDTH - 2 * SIDE) / count
    width = slot * 0.62
    area = HEIGHT - TOP - BOTTOM
    current = usage[-1]["period"]
    step = 1 if count <= MAX_LABELS else 2
    bars, rows = [], []
    for index, item in enumerate(usage):
        period, quantity = item["period"], Decimal(item["quantity"])
        height = max(float(quantity / top) * area, 1.0 if quantity > 0 else 0.0)
        place = count - 1 - index if rtl else index
        x = SIDE + place * slot + (slot - width) / 2
        role = "current" if period == current else ("last_year" if period == _year_before(current) else "other")
        labelled = (count - 1 - index) % step == 0
        value = fmt.number(quantity)
        anchor, value_x = ("end", x + width) if place == count - 1 else ("start", x) if place == 0 \
            else ("middle", x + width / 2)
        bars.append(ChartBar(x=_num(x), y=_num(HEIGHT - BOTTOM - height), width=_num(width), height=_num(height),
                             center=_num(x + width / 2), role=role, anchor=anchor, value_x=_num(value_x),
                             month=fmt.month(period, "MMM") if labelled else "",
                             value=f"{value} {unit}" if unit else value))
        rows.append(UsageRow(month=fmt.month(period, "MMMM y"), quantity=value))
    return UsageChart(bars=tuple(bars), rows=tuple(rows), has_last_year=any(b.role == "last_year" for b in bars))
