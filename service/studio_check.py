"""The studio's side of a check: its customers (the samples, or one pasted), its cache of checks, its frames.

A check is the one every front end runs (:func:`billcast.jobs.check_storyboard`):
the renderer's parse, then the storyboard planned for the customer in each of its
languages. The plan in the chosen language is kept, at the preview frame's size,
so the preview's time slider costs only the drawing of one frame. Checks and
frames run in the studio's worker process (``studio_tasks``), which keeps them.

A pasted record is parsed from the request body and lives only in memory, in
the worker's bounded cache of checks, keyed by a hash: it is never written, never logged.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from PIL import Image

from billcast.jobs import (RecordErrors, Sample, check_storyboard, load_record_file, load_records, parse_record,
                           record_values)
from billcast.jobs.storyboard_check import Checked, Planned, Problem, fit
from billcast.renderer import BillcastError, Timeline, plan, preview

FRAME_MAX = 1280  # longest side of a preview frame, in pixels
VIDEO_BOX = (640, 360)  # a preview video fits in this


def problem_json(problem: Problem) -> dict[str, Any]:
    """A problem as the editor lists it: a line to jump to, the field, what is wrong, where planning found it."""
    return {"text": problem.text, "line": problem.line, "field": problem.field, "message": problem.message,
            "context": problem.context}


# --- customers: the sample records, or one pasted ------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """Whom a preview is for. ``key`` names it in requests and caches; it carries no personal data."""

    key: str
    label: str  # as the customer list shows it
    sample: Sample  # what the check plans with; its problems name the customer by full name
    in_arrears: bool = False


def _sample(record: Any) -> Customer:
    values = record_values(record)
    debt = values.get("debt") or {}
    key = "s" + hashlib.sha256(record.customer_id.encode("utf-8")).hexdigest()[:11]
    locale = values.get("locale") or ""
    late = f"{debt.get('days_past_due')} days past due" if debt else "bill"
    name = f"{values['first_name']} {values['last_name']}"
    label = " · ".join(part for part in (name, locale, late) if part)
    return Customer(key=key, label=label, sample=Sample(name, values), in_arrears=bool(debt))


def load_samples(folder: Path) -> tuple[Customer, ...]:
    """Every valid record in ``customers.jsonl`` and in the single-record ``*.json`` files; the first of each id."""
    found: dict[str, Customer] = {}
    sources = [folder / "customers.jsonl"] if (folder / "customers.jsonl").is_file() else []
    sources += sorted(folder.glob("*.json"))
    for source in sources:
        try:
            records = list(load_records(source)) if source.suffix == ".jsonl" else [load_record_file(source)]
        except (BillcastError, OSError):
            continue
        for record in records:
            if not isinstance(record, RecordErrors) and record.customer_id not in found:
                found[record.customer_id] = _sample(record)
    return tuple(found.values())


def default_sample(samples: tuple[Customer, ...], purpose: str) -> Customer | None:
    """A customer the storyboard is made for: one with a bill for bills, one in arrears for reminders."""
    wanted = purpose != "bill"
    return next((s for s in samples if s.in_arrears == wanted), samples[0] if samples else None)


class RecordProblem(Exception):
    """A pasted record that cannot be used; ``problems`` are shown to the one who pasted it, nowhere else."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("the pasted record cannot be used")
        self.problems = problems


def pasted_customer(text: str) -> Customer:
    """A customer from a pasted JSON record: exact decimals, every contract rule, nothing kept."""
    try:
        obj = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise RecordProblem([_record_problem(line, None, f"not valid JSON: {getattr(exc, 'msg', exc)}")]) from None
    except RecursionError:
        raise RecordProblem([_record_problem(None, None, "not valid JSON: nested too deeply")]) from None
    try:
        record = parse_record(obj, source="pasted record")
    except RecordErrors as refused:
        raise RecordProblem([_record_problem(None, e.field, e.message) for e in refused.errors]) from None
    values = record_values(record)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    return Customer(key="p" + digest, label="pasted record", sample=Sample("the pasted record", values),
                    in_arrears=bool(values.get("debt")))


def _record_problem(line: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"line": line, "field": field, "message": message, "context": ""}


# --- a check, and what its preview draws -------------------------------------------------------------


def check_sample(text: str, name: str, sample: Sample | None, language: str, links: Mapping[str, str],
                 assets_dir: Path | None = None) -> Checked:
    """Check ``text`` as the storyboard ``name``; plan it for ``sample`` in ``language`` ("" for theirs)
    and in every other language it translates, the chosen one at the preview frame's size."""
    return check_storyboard(text, f"{name}.yaml", [sample] if sample is not None else [], links, language=language,
                            box=(FRAME_MAX, FRAME_MAX), assets_dir=assets_dir)


def preview_plan(checked: Checked) -> Planned | None:
    """What the preview draws: the customer's plan in the chosen language, when the text has no problems."""
    return checked.plans[0] if checked.ok and checked.plans else None


def video_timeline(checked: Checked, links: Mapping[str, str]) -> Timeline:
    """The checked storyboard planned again for its customer at the preview video's small size."""
    planned = preview_plan(checked)
    assert checked.board is not None and planned is not None
    return plan(checked.board, planned.sample.values, links, size=fit(checked.board.model.size, VIDEO_BOX),
                locale=planned.locale)


def frame_jpeg(timeline: Timeline, t: float, fonts_dir: Path | None = None,
               width: int | None = None) -> tuple[bytes, float]:
    """The frame at ``t`` (clamped into the video) as JPEG bytes, and the time drawn; ``width`` makes a
    thumbnail of it."""
    t = min(max(t, 0.0), max(timeline.duration - 1 / timeline.fps, 0.0))
    image = preview(timeline, t, fonts_dir=fonts_dir)
    if width is not None and width < image.width:
        image = image.resize((width, max(round(image.height * width / image.width), 1)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue(), t


class Checks:
    """The last few checks, by (text, customer, language): a slider move looks its plan up here."""

    def __init__(self, size: int = 24) -> None:
        self._size = size
        self._items: OrderedDict[tuple, Checked] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], Checked]) -> Checked:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        checked = make()  # outside the lock: another request's frame need not wait for this plan
        with self._lock:
            self._items[key] = checked
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return checked

    def __len__(self) -> int:
        return len(self._items)
