"""Checking and previewing a storyboard's text in the studio, against a sample or a pasted customer.

A check parses the text (every problem, each with its line), refuses before
anything runs what the template sandbox would refuse at render time (Python
internals, ``self``, includes), then plans the storyboard for the customer in
each of its languages, which finds fields the record lacks and anything the
sandbox stops while rendering. The plan in the chosen language is kept, so the
preview's time slider costs only the drawing of one frame.

A pasted record is parsed from the request body and lives only in memory, in
the bounded cache of plans, keyed by a hash: it is never written, never logged.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, TemplateSyntaxError, nodes

from billcast.jobs import RecordErrors, load_record_file, load_records, parse_record, record_values
from billcast.renderer import (BillcastError, Storyboard, StoryboardError, StoryboardErrors, Timeline, parse_locale,
                      parse_storyboard, plan, preview)

FRAME_MAX = 1280  # longest side of a preview frame, in pixels
VIDEO_BOX = (640, 360)  # a preview video fits in this
EXPRESSION_FIELDS = {"when", "values", "rows"}
MAX_VALUES = 100_000  # values in a storyboard's YAML once its aliases are expanded


@dataclass(frozen=True)
class Problem:
    """One problem as the editor shows it: a line to jump to, the field, what is wrong."""

    line: int | None
    field: str | None
    message: str
    context: str = ""  # for problems found while planning: the customer and language

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message, "context": self.context}

    @classmethod
    def of(cls, error: StoryboardError, context: str = "") -> Problem:
        return cls(line=error.line, field=error.field, message=error.message, context=context)


# --- customers: the sample records, or one pasted ------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """Whom a preview is for. ``key`` names it in requests and caches; it carries no personal data."""

    key: str
    label: str  # as the customer list shows it
    who: str  # as a problem found with this customer names it
    locale: str
    values: Mapping[str, Any] = field(repr=False)
    in_arrears: bool = False


def _sample(record: Any) -> Customer:
    values = record_values(record)
    debt = values.get("debt") or {}
    key = "s" + hashlib.sha256(record.customer_id.encode("utf-8")).hexdigest()[:11]
    locale = values.get("locale") or ""
    late = f"{debt.get('days_past_due')} days past due" if debt else "bill"
    label = " · ".join(part for part in (f"{values['first_name']} {values['last_name']}", locale, late) if part)
    return Customer(key=key, label=label, who=f"{values['first_name']} {values['last_name']}", locale=locale,
                    values=values, in_arrears=bool(debt))


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

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("the pasted record cannot be used")
        self.problems = problems


def pasted_customer(text: str) -> Customer:
    """A customer from a pasted JSON record: exact decimals, every contract rule, nothing kept."""
    try:
        obj = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise RecordProblem([Problem(line, None, f"not valid JSON: {getattr(exc, 'msg', exc)}")]) from None
    except RecursionError:
        raise RecordProblem([Problem(None, None, "not valid JSON: nested too deeply")]) from None
    try:
        record = parse_record(obj, source="pasted record")
    except RecordErrors as refused:
        raise RecordProblem([Problem(None, e.field, e.message) for e in refused.errors]) from None
    values = record_values(record)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    return Customer(key="p" + digest, label="pasted record", who="the pasted record", locale=values.get("locale") or "",
                    values=values, in_arrears=bool(values.get("debt")))


# --- what the sandbox would refuse, refused before anything runs --------------------------------

_PARSER = Environment()  # parses only: never renders, so it needs no sandbox


def _scalars(node: yaml.Node, loc: tuple = (), seen: set[int] | None = None) -> Any:
    """Every string in the document with where it is; a node an alias repeats is visited once (no "billion laughs")."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(value, loc + (key.value,), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _scalars(item, loc + (index,), seen)
    elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        yield loc, node


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _refusals(ast: nodes.Template) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    internal = "names starting with _ are Python internals, which storyboard texts cannot read"
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Include,
                              nodes.Import, nodes.FromImport, nodes.Extends)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            found.append((node.lineno, f"reads {node.attr!r}: {internal}"))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and str(node.arg.value).startswith("_"):
            found.append((node.lineno, f"reads {node.arg.value!r}: {internal}"))
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            found.append((node.lineno, "the attr filter is not available in storyboard texts: write a.b"))
        elif isinstance(node, nodes.Name) and node.name == "self":
            found.append((node.lineno, "'self' is the template itself, which storyboard texts cannot read"))
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            found.append((node.lineno, "storyboard texts cannot include, import or extend templates or files"))
    return found


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return None  # the parser reports it, with its line


def expansion(text: str) -> Problem | None:
    """Refuse a document whose aliases repeat more than :data:`MAX_VALUES` values ("billion laughs"):
    a few lines of YAML must not keep a request busy for hours."""
    root = _compose(text)
    if root is None:
        return None
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in open_:
            raise _Recursive(node.start_mark.line + 1)
        if id(node) not in sizes:
            open_.add(id(node))
            children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
                node.value if isinstance(node, yaml.SequenceNode) else []
            sizes[id(node)] = 1 + sum(size(child) for child in children)
            open_.discard(id(node))
        return sizes[id(node)]

    try:
        total = size(root)
    except _Recursive as exc:
        return Problem(exc.line, None, "a YAML alias (*name) is used inside its own anchor (&name)")
    except RecursionError:
        return Problem(None, None, "the YAML is nested too deeply")
    if total <= MAX_VALUES:
        return None
    return Problem(1, None, f"the YAML's aliases (*name) repeat more than {MAX_VALUES:,} values: write them out")


class _Recursive(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def refusals(text: str) -> list[Problem]:
    """Every template construct the sandbox refuses, wherever it is (also in branches a sample never takes)."""
    root = _compose(text)
    if root is None:
        return []
    problems = []
    for loc, node in _scalars(root):
        source = node.value
        expression = bool(loc) and loc[-1] in EXPRESSION_FIELDS and "scenes" in loc
        if not expression and not any(mark in source for mark in ("{{", "{%", "{#")):
            continue
        try:
            ast = _PARSER.parse("{{ " + source + " }}" if expression else source)
        except TemplateSyntaxError:
            continue  # the renderer's own check reports syntax, with its line
        first = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
        for lineno, message in _refusals(ast):
            problems.append(Problem(first + lineno - 1, _dotted(loc), message))
    return problems


# --- a check: parse, refuse, plan ----------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A text checked for one customer and language; with no problems, its plan for the preview."""

    problems: tuple[Problem, ...]
    board: Storyboard | None = None
    timeline: Timeline | None = None  # in the chosen language, at the preview frame's size
    locale: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled down to fit ``box`` (never up), as even numbers."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(2, round(size[0] * scale / 2) * 2), max(2, round(size[1] * scale / 2) * 2)


def _locale_for(language: str, customer: Customer) -> str:
    if customer.locale and parse_locale(customer.locale).language == parse_locale(language).language:
        return customer.locale
    return language


def check(text: str, name: str, customer: Customer | None, language: str,
          links: Mapping[str, str]) -> Checked:
    """Check ``text`` as the storyboard ``name``; plan it for ``customer`` in ``language`` ("" for theirs)
    and in every other language it translates."""
    path = f"{name}.yaml"
    too_big = expansion(text)
    if too_big is not None:
        return Checked((too_big,))
    try:
        board = parse_storyboard(text, path=path)
    except StoryboardErrors as exc:
        return Checked(tuple(Problem.of(e) for e in exc.errors) + tuple(refusals(text)))
    except StoryboardError as exc:
        return Checked((Problem.of(exc),))
    refused = refusals(text)
    if refused or customer is None:
        return Checked(tuple(refused), board=board)
    translations = board.model.translations
    if language in translations:
        chosen = _locale_for(language, customer)
    else:
        chosen = customer.locale or _locale_for(board.model.default_language, customer)
    locales = dict.fromkeys([chosen] + [_locale_for(lang, customer) for lang in translations])
    frame = fit(board.model.size, (FRAME_MAX, FRAME_MAX))
    problems: dict[tuple, Problem] = {}
    timeline = None
    for locale in locales:
        try:
            planned = plan(board, customer.values, links, size=frame, locale=locale)
        except BillcastError as exc:
            problem = Problem(getattr(exc, "line", None), getattr(exc, "field", None),
                              getattr(exc, "message", str(exc)), f"with {customer.who}, in {locale}")
            problems.setdefault((problem.line, problem.field, problem.message), problem)
            continue
        if locale == chosen:
            timeline = planned
    if problems:
        return Checked(tuple(sorted(problems.values(), key=lambda p: (p.line or 0, p.field or ""))), board=board)
    return Checked((), board=board, timeline=timeline, locale=chosen)


def video_timeline(checked: Checked, customer: Customer, links: Mapping[str, str]) -> Timeline:
    """The checked storyboard planned again at the preview video's small size."""
    assert checked.board is not None
    size = fit(checked.board.model.size, VIDEO_BOX)
    return plan(checked.board, customer.values, links, size=size, locale=checked.locale)


def frame_jpeg(timeline: Timeline, t: float) -> tuple[bytes, float]:
    """The frame at ``t`` (clamped into the video) as JPEG bytes, and the time drawn."""
    t = min(max(t, 0.0), max(timeline.duration - 1 / timeline.fps, 0.0))
    buffer = io.BytesIO()
    preview(timeline, t).save(buffer, "JPEG", quality=85)
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
