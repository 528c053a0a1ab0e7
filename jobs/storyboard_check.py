"""Checking a storyboard: the one check ``billcast check`` and the studio both run.

The renderer finds every problem a storyboard has on its own when it parses it
(the YAML, every field, colours, times, templates, what the sandbox refuses,
assets); ``billcast run`` loads storyboards the same way. What only a record
shows, a field the values lack, is found here by planning the storyboard for
sample customers, each in the language asked for and in every other language
the storyboard translates, so a typo in the German text shows up while the
Italian one is previewed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billcast.renderer import (BillcastError, Storyboard, StoryboardError, StoryboardErrors, Timeline, parse_locale,
                               parse_storyboard, plan, read_storyboard)


@dataclass(frozen=True)
class Problem:
    """One problem as every front end shows it: ``text`` reads ``file:line: field: message``; ``context``
    says with which sample and in which language planning found it ("" when parsing did)."""

    text: str
    line: int | None
    field: str | None
    message: str
    context: str = ""

    @classmethod
    def of(cls, error: BillcastError, context: str = "") -> Problem:
        return cls(text=str(error), line=getattr(error, "line", None), field=getattr(error, "field", None),
                   message=getattr(error, "message", str(error)), context=context)

    def __str__(self) -> str:
        return f"{self.text} ({self.context})" if self.context else self.text


@dataclass(frozen=True)
class Sample:
    """A customer a storyboard is checked against; ``who`` names it in problems (a file, a name)."""

    who: str
    values: Mapping[str, Any] = field(repr=False)

    @property
    def locale(self) -> str:
        return self.values.get("locale") or ""


@dataclass(frozen=True)
class Planned:
    """A storyboard planned without problems for one sample, in the locale it was asked for."""

    sample: Sample
    locale: str
    timeline: Timeline


@dataclass(frozen=True)
class Checked:
    """A storyboard's text checked: every problem, in file order for each sample; what parsed and planned."""

    problems: tuple[Problem, ...]
    board: Storyboard | None = None
    plans: tuple[Planned, ...] = ()  # one for each sample that planned without problems

    @property
    def ok(self) -> bool:
        return not self.problems


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled down to fit ``box`` (never up), as even numbers."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(2, round(size[0] * scale / 2) * 2), max(2, round(size[1] * scale / 2) * 2)


def check_storyboard(text: str, path: str, samples: Sequence[Sample], links: Mapping[str, str], *,
                     language: str = "", box: tuple[int, int] | None = None,
                     assets_dir: Path | None = None) -> Checked:
    """Check ``text`` as the storyboard file ``path``, then plan it for each sample in ``language``
    ("" for the sample's own) and in every language it translates. Plans are made at the storyboard's
    size, or scaled down to fit ``box``."""
    try:
        board = parse_storyboard(text, path=path, assets_dir=assets_dir)
    except StoryboardErrors as exc:
        return Checked(tuple(Problem.of(e) for e in exc.errors))
    except StoryboardError as exc:
        return Checked((Problem.of(exc),))
    size = fit(board.model.size, box) if box else None
    problems: list[Problem] = []
    plans: list[Planned] = []
    for sample in samples:
        found, planned = _plan_sample(board, sample, links, language, size)
        problems += found
        plans += [planned] if planned is not None else []
    return Checked(tuple(problems), board=board, plans=tuple(plans))


def check_storyboard_file(path: str | Path, samples: Sequence[Sample], links: Mapping[str, str], *,
                          assets_dir: Path | None = None) -> Checked:
    """:func:`check_storyboard` on a file's text, or the reason it cannot be read."""
    try:
        text = read_storyboard(path)
    except StoryboardError as exc:
        return Checked((Problem.of(exc),))
    return check_storyboard(text, str(path), samples, links, assets_dir=assets_dir)


def _locale_for(language: str, sample: Sample) -> str:
    if sample.locale and parse_locale(sample.locale).language == parse_locale(language).language:
        return sample.locale
    return language


def _plan_sample(board: Storyboard, sample: Sample, links: Mapping[str, str], language: str,
                 size: tuple[int, int] | None) -> tuple[list[Problem], Planned | None]:
    """The problems planning finds for one sample, each once, in file order; with none, the asked-for plan."""
    translations = board.model.translations
    if language in translations:
        chosen = _locale_for(language, sample)
    else:
        chosen = sample.locale or _locale_for(board.model.default_language, sample)
    problems: dict[tuple, Problem] = {}
    timeline = None
    for locale in dict.fromkeys([chosen] + [_locale_for(lang, sample) for lang in translations]):
        try:
            planned = plan(board, sample.values, links, size=size, locale=locale)
        except BillcastError as exc:
            problem = Problem.of(exc, f"with {sample.who}, in {locale}")
            problems.setdefault((problem.line, problem.field, problem.message), problem)
            continue
        if locale == chosen:
            timeline = planned
    if problems:
        return sorted(problems.values(), key=lambda p: (p.line or 0, p.field or "")), None
    assert timeline is not None
    return [], Planned(sample=sample, locale=chosen, timeline=timeline)
