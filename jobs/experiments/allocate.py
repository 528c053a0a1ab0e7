"""Who is in an experiment, in which wave and segment, held out or given which arm, with what probability.

Pure: a record's values and the wave's shares per segment in, an :class:`Allocation` out. Every random
choice is a number fixed by the experiment's seed and the customer id (``policy.uniform``), so the same
record always lands in the same wave, the same holdout decision and, for the same shares, the same arm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..campaign import ChoiceError, Experiment
from ..rules import SAFE_ERRORS, evaluate, value_of
from .policy import fixed_propensities, pick, uniform

SEGMENT_VALUE_CHARS = 40  # a dimension's value as it shows in a segment key
Shares = Callable[[int, str], tuple[float, ...]]  # (wave, segment) -> one share per arm, in arm order


@dataclass(frozen=True)
class Allocation:
    """One recipient's place in the experiment. ``propensity`` is the probability of what happened to them:
    the holdout share for a held-out recipient, else the chosen arm's share of the segment's traffic."""

    wave: int
    segment: str
    arm: str | None  # None: held out
    propensity: float

    @property
    def holdout(self) -> bool:
        return self.arm is None


def takes_part(experiment: Experiment, values: Mapping[str, Any], where: str = "") -> bool:
    """Whether a record is in the experiment (its ``when``, or everyone); ``where`` names the campaign file."""
    if experiment.when is None:
        return True
    with _refusing("experiment.when", where):
        return evaluate(experiment.when, values)


class _refusing:
    """An author's expression failing on one record refuses that record only (as a rule's ``when`` does)."""

    def __init__(self, field: str, where: str) -> None:
        self.field, self.where = field, where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, ChoiceError):
            return False
        detail = str(exc) if isinstance(exc, SAFE_ERRORS) else type(exc).__name__  # no record values in logs
        raise ChoiceError(f"cannot be evaluated for this record: {detail}", field=self.field,
                          source=self.where or None) from None


def wave_of(experiment: Experiment, customer_id: str) -> int:
    """The wave (1..waves) a customer belongs to: an even, fixed split of the input."""
    return 1 + int(uniform(experiment.seed, 0, f"wave\0{customer_id}") * experiment.waves)


def segment_of(experiment: Experiment, values: Mapping[str, Any], where: str = "") -> str:
    """The segment key, ``dimension=value`` joined by ``|`` in the file's order ("all" without dimensions)."""
    if not experiment.segments:
        return "all"
    parts = []
    for name, source in experiment.segments:
        with _refusing(f"experiment.segments.{name}", where):
            parts.append(f"{name}={_shown(value_of(source, values))}")
    return "|".join(parts)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        value = value.normalize()
    text = "".join(ch if ch.isprintable() and ch not in "|=" else "_" for ch in str(value))
    return text[:SEGMENT_VALUE_CHARS] or "empty"


def held_out(experiment: Experiment, customer_id: str) -> bool:
    """Whether the customer is in the holdout: a fixed ``holdout`` share, whatever the wave or segment."""
    return uniform(experiment.seed, 0, f"holdout\0{customer_id}") < experiment.holdout


def fixed_shares(experiment: Experiment) -> tuple[float, ...]:
    return fixed_propensities([arm.weight for arm in experiment.arms])


def allocate(experiment: Experiment, customer_id: str, values: Mapping[str, Any], shares: Shares,
             where: str = "") -> Allocation:
    """The recipient's wave, segment, and holdout or arm; ``shares`` gives the wave's shares per segment.

    Raises :class:`ChoiceError` (naming the dimension) when a segment expression fails on this record.
    """
    wave = wave_of(experiment, customer_id)
    try:
        segment = segment_of(experiment, values, where)
    except ChoiceError as exc:
        exc.customer_id = customer_id
        raise
    if held_out(experiment, customer_id):
        return Allocation(wave, segment, None, experiment.holdout)
    weights = shares(wave, segment)
    index = pick(weights, uniform(experiment.seed, wave, customer_id))
    return Allocation(wave, segment, experiment.arms[index].variant, weights[index])
