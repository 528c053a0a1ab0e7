"""The numbers an experiment's report stands on: rates with 95% intervals, uplift over the holdout with
its interval, amounts per recipient, and inverse-propensity-weighted estimates for adaptive traffic.

Formulas a finance team can check by hand: Wilson score intervals for rates, Newcombe's hybrid score
interval for a difference of rates, normal (Welch) intervals for amounts, and the self-normalised
(Hajek) inverse-propensity estimate. Pure functions over counts and lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the normal quantile of 0.975
MIN_RECIPIENTS = 30  # below this an arm (or the holdout) is reported, flagged, but not ranked
MIN_PAID = 5


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """The Wilson score interval of a rate: good near 0 and 1 and for small samples, unlike the normal one."""
    if n <= 0:
        return Interval(0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def rate_difference(s1: int, n1: int, s0: int, n0: int) -> tuple[float, Interval]:
    """``s1/n1 - s0/n0`` with Newcombe's hybrid score interval (his method 10), from the two Wilson intervals."""
    p1, p0 = s1 / n1, s0 / n0
    a, b = wilson(s1, n1), wilson(s0, n0)
    diff = p1 - p0
    low = diff - math.sqrt((p1 - a.low) ** 2 + (b.high - p0) ** 2)
    high = diff + math.sqrt((a.high - p1) ** 2 + (p0 - b.low) ** 2)
    return diff, Interval(low, high)


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, Interval]:
    """The mean and its normal 95% interval (the sample standard deviation over the square root of n)."""
    n = len(values)
    if n == 0:
        return 0.0, Interval(0.0, 0.0)
    mean = sum(values) / n
    if n == 1:
        return mean, Interval(mean, mean)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, Interval(mean - half, mean + half)


def mean_difference(values1: Sequence[float], values0: Sequence[float], z: float = Z95) -> tuple[float, Interval]:
    """Difference of two means with Welch's normal interval (unequal variances)."""
    m1, _ = mean_interval(values1)
    m0, _ = mean_interval(values0)
    se2 = 0.0
    for values, mean in ((values1, m1), (values0, m0)):
        if len(values) > 1:
            se2 += sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)
    half = z * math.sqrt(se2)
    return m1 - m0, Interval(m1 - m0 - half, m1 - m0 + half)


def hajek(outcomes: Sequence[float], propensities: Sequence[float]) -> float | None:
    """The self-normalised inverse-propensity estimate of an arm's mean outcome: over the recipients that
    got the arm, each outcome weighted by 1 / the probability with which they got it. ``None`` if none did."""
    weights = [1 / p for p in propensities]
    total = sum(weights)
    if not total:
        return None
    return sum(w * y for w, y in zip(weights, outcomes)) / total


def too_small(recipients: int, paid: int) -> bool:
    """Whether a group is too small to rank: fewer than 30 recipients or 5 payments."""
    return recipients < MIN_RECIPIENTS or paid < MIN_PAID
