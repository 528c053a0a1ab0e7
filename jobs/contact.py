"""Who may be contacted and when: the vocabularies of opt-outs and disputes, a daily send window in the
recipient's time zone, and a cap on messages per week.

Pure: times in, times out (aware UTC). The run asks :func:`next_window` for each
recipient's ``send_after``/``send_before`` and :func:`allowed_from` whether the
frequency cap holds them back, and until when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

CHANNELS = ("email", "sms", "post")  # what a campaign's messages go out by
SUPPRESSION_CHANNELS = (*CHANNELS, "all")  # an opt-out for "all" suppresses every channel
DISPUTE_REASONS = ("not_mine", "wrong_amount", "already_paid", "other")
DISPUTE_OUTCOMES = ("upheld", "corrected", "withdrawn")
DISPUTE_DETAILS_MAX = 500  # characters of the debtor's own words
CAP_DAYS = 7  # max_messages_per_7_days counts messages in this many days
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")
_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


@lru_cache(maxsize=1024)
def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (never a path: the name's shape is checked first)."""
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name) or name in ("localtime", "posixrules", "Factory"):
        return False  # not a zone but this machine's setting, or a placeholder
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _time_zone(value: object) -> str:
    if not isinstance(value, str) or not is_time_zone(value):
        raise PydanticCustomError("timezone", "must be an IANA time zone such as Europe/Rome, America/New_York or UTC")
    return value


TimeZoneName = Annotated[str, PlainValidator(_time_zone)]
"""A record's ``timezone``: an IANA name this machine's time zone database knows (pydantic, at the edge)."""


@dataclass(frozen=True)
class SendWindow:
    """The local hours messages may be sent in, every day: ``08:00-21:00``."""

    start: time
    end: time | None  # None: 24:00, the end of the day

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """``HH:MM-HH:MM``, start before end, both local times (``24:00`` ends at midnight); ValueError otherwise."""
        match = _WINDOW.fullmatch(text.strip())
        if not match:
            raise ValueError(f'must be "HH:MM-HH:MM" in 24-hour local time, such as "08:00-21:00", got {text!r}')
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h2 == 24 and m2:
            raise ValueError(f"24:00 is the latest end, got {text!r}")
        if (h1, m1) >= (h2, m2):
            raise ValueError(f"the start must come before the end on the same day, got {text!r}")
        return cls(time(h1, m1), None if h2 == 24 else time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else format(self.end, '%H:%M')}"


def _local(day: datetime, at: time | None, zone: ZoneInfo) -> datetime:
    """``at`` on ``day``'s date in ``zone``, as UTC (None: the next midnight). A time a clock change repeats is
    its first occurrence; one it skips reads as the clock would an hour later (PEP 495's fold=0)."""
    if at is None:
        return datetime.combine(day.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return datetime.combine(day.date(), at, tzinfo=zone).astimezone(UTC)


def next_window(now: datetime, window: SendWindow, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first stretch of the window at or after ``now``, as (send_after, send_before) in UTC.

    Inside today's window: from ``now`` to its end. Before it: today's window.
    After it: tomorrow's.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware time")
    local = now.astimezone(zone)
    for days in range(3):  # today, else tomorrow (a day a clock change empties is skipped)
        day = local + timedelta(days=days)
        start, end = _local(day, window.start, zone), _local(day, window.end, zone)
        if now < end and start < end:
            return max(start, now).astimezone(UTC), end
    raise ValueError(f"no send window {window} within two days of {now.isoformat()}")  # pragma: no cover


def allowed_from(recent: tuple[datetime, ...], cap: int, now: datetime) -> datetime | None:
    """When one more message fits under ``cap`` messages in :data:`CAP_DAYS` days, in whole seconds (as the
    manifest writes it) and never a moment early; None when it fits now.

    ``recent`` are the customer's messages of the last days, oldest first.
    """
    window = timedelta(days=CAP_DAYS)
    inside = sorted(t for t in recent if t > now - window)
    if len(inside) < cap:
        return None
    fits = inside[len(inside) - cap] + window
    return fits + timedelta(microseconds=-fits.microsecond % 1_000_000)  # up to the next whole second
