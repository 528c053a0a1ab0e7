"""The suppression list as CSV: what ``billcast suppress import`` reads and ``export`` writes.

Columns (a header row; UTF-8, a BOM allowed): ``customer_id`` (required),
``channel`` (``email``, ``sms``, ``post`` or ``all``; empty is ``all``),
``reason`` (a short code such as ``optout`` or ``cease_communication``; empty is
``request``), ``source`` (where it came from; empty is ``import``). An export adds
``campaign_id`` and ``created_at``, which an import reads past, so an export can
be imported elsewhere. A bad row is refused on its own, named by its line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from billcast.renderer import RecordError

from .ledger import SUPPRESSION_CHANNELS, Suppression

FIELDS = ("customer_id", "channel", "reason", "source", "campaign_id", "created_at")
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CODE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Entry:
    """One row to put on the list."""

    customer_id: str
    channel: str
    reason: str
    source: str


def _code(row: dict[str, str | None], name: str, default: str, limit: int, line: int, shown: str) -> str:
    value = (row.get(name) or "").strip() or default
    if not _CODE.fullmatch(value) or len(value) > limit:
        raise RecordError(f"must be 1-{limit} letters, digits, '.', '_' or '-'", line=line, field=name, source=shown)
    return value


def read_entries(path: Path) -> Iterator[Entry | RecordError]:
    """Each row as an :class:`Entry`, or the :class:`RecordError` that refuses it (the file goes on)."""
    shown = str(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if "customer_id" not in (reader.fieldnames or ()):
            raise RecordError("needs a header row with a customer_id column (and optionally channel, reason, "
                              "source)", source=shown)
        for row in reader:
            line = reader.line_num
            customer_id = (row.get("customer_id") or "").strip()
            if not _CUSTOMER_ID.fullmatch(customer_id):
                yield RecordError("must be 1-64 letters, digits, '.', '_' or '-'", line=line, field="customer_id",
                                  source=shown)
                continue
            channel = (row.get("channel") or "").strip() or "all"
            if channel not in SUPPRESSION_CHANNELS:
                yield RecordError(f"must be one of {', '.join(SUPPRESSION_CHANNELS)}, got {channel[:20]!r}",
                                  line=line, customer_id=customer_id, field="channel", source=shown)
                continue
            try:
                yield Entry(customer_id, channel, _code(row, "reason", "request", 64, line, shown),
                            _code(row, "source", "import", 32, line, shown))
            except RecordError as exc:
                yield RecordError(exc.message, line=line, customer_id=customer_id, field=exc.field, source=shown)


def export_lines(entries: Iterable[Suppression]) -> Iterator[str]:
    """The list as CSV text, a line at a time (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for entry in entries:
        writer.writerow((entry.customer_id, entry.channel, entry.reason, entry.source, entry.campaign_id or "",
                         entry.created_at.astimezone(UTC).isoformat(timespec="seconds")))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()
