"""An experiment's report as data: per segment and arm, what it brought in, against the holdout.

Input: one :class:`Observation` per recipient of the experiment (its segment, its arm or the holdout,
the propensity it was allocated with, whether it paid within the window and how much). Output: rows a
finance team can audit (counts, rates with Wilson intervals, amounts per recipient with normal
intervals, uplift over the holdout with Newcombe's or Welch's interval, the probability that each arm
is best, a Hajek inverse-propensity estimate for adaptively allocated traffic) and the same as CSV.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .policy import ArmOutcomes, Metric, posterior_draws, probability_best
from .stats import Interval, hajek, mean_difference, mean_interval, rate_difference, too_small, wilson

ALL = "all segments"
PROBABILITY_SEED = 20_260_101  # fixes the Monte Carlo draws of P(best), so a report reads the same twice


@dataclass(frozen=True)
class Observation:
    segment: str
    arm: str | None  # None: the holdout
    propensity: float
    paid: bool
    amount: int  # minor units collected within the window


@dataclass(frozen=True)
class ArmRow:
    segment: str
    arm: str  # an arm's name, or "holdout"
    recipients: int
    paid: int
    rate: float
    rate_interval: Interval
    amount_per_recipient: float  # minor units
    amount_interval: Interval
    uplift: float | None  # paid rate over the holdout's (None without a holdout)
    uplift_interval: Interval | None
    amount_uplift: float | None  # amount per recipient over the holdout's
    amount_uplift_interval: Interval | None
    probability_best: float | None  # None for the holdout and for small groups
    ipw_rate: float | None  # inverse-propensity-weighted paid rate (adaptive traffic)
    small: bool  # too few recipients or payments to rank

    @property
    def ranked(self) -> bool:
        return not self.small and self.arm != "holdout"


def experiment_rows(observations: Iterable[Observation], arms: Sequence[str], metric: Metric) -> list[ArmRow]:
    """Rows per segment (sorted) and arm (in ``arms`` order, then the holdout), then the same over all segments."""
    by_segment: dict[str, list[Observation]] = defaultdict(list)
    for obs in observations:
        by_segment[obs.segment].append(obs)
    everything = [obs for group in by_segment.values() for obs in group]
    rows: list[ArmRow] = []
    for segment in sorted(by_segment):
        rows += _segment_rows(segment, by_segment[segment], arms, metric)
    if len(by_segment) > 1:
        rows += _segment_rows(ALL, everything, arms, metric)
    return rows


def _segment_rows(segment: str, group: Sequence[Observation], arms: Sequence[str], metric: Metric) -> list[ArmRow]:
    holdout = [obs for obs in group if obs.arm is None]
    members = {arm: [obs for obs in group if obs.arm == arm] for arm in arms}
    outcomes = [ArmOutcomes(len(obs), sum(o.paid for o in obs), sum(o.amount for o in obs),
                            float(sum(o.amount ** 2 for o in obs))) for obs in members.values()]
    rankable = [not too_small(o.recipients, o.paid) for o in outcomes]
    best: Sequence[float | None] = [None] * len(arms)
    if sum(rankable) >= 2:
        draws = posterior_draws(outcomes, metric, np.random.default_rng(PROBABILITY_SEED))
        kept = [i for i, ok in enumerate(rankable) if ok]
        shares = probability_best(draws[:, kept])
        best = [shares[kept.index(i)] if i in kept else None for i in range(len(arms))]
    rows = [_row(segment, arm, obs, holdout, best[i]) for i, (arm, obs) in enumerate(members.items())]
    if holdout:
        rows.append(_row(segment, "holdout", holdout, [], None))
    return rows


def _row(segment: str, arm: str, group: Sequence[Observation], holdout: Sequence[Observation],
         p_best: float | None) -> ArmRow:
    n, paid = len(group), sum(o.paid for o in group)
    amounts = [float(o.amount) for o in group]
    mean, mean_band = mean_interval(amounts)
    uplift = uplift_band = amount_uplift = amount_band = None
    if holdout and n:
        uplift, uplift_band = rate_difference(paid, n, sum(o.paid for o in holdout), len(holdout))
        amount_uplift, amount_band = mean_difference(amounts, [float(o.amount) for o in holdout])
    adaptive = len({round(o.propensity, 9) for o in group}) > 1
    ipw = hajek([float(o.paid) for o in group], [o.propensity for o in group]) if adaptive else None
    return ArmRow(segment=segment, arm=arm, recipients=n, paid=paid, rate=paid / n if n else 0.0,
                  rate_interval=wilson(paid, n), amount_per_recipient=mean, amount_interval=mean_band,
                  uplift=uplift, uplift_interval=uplift_band, amount_uplift=amount_uplift,
                  amount_uplift_interval=amount_band, probability_best=p_best, ipw_rate=ipw,
                  small=too_small(n, paid))


CSV_FIELDS = ("segment", "arm", "recipients", "paid", "paid_rate", "paid_rate_low", "paid_rate_high",
              "amount_per_recipient", "amount_low", "amount_high", "uplift", "uplift_low", "uplift_high",
              "amount_uplift", "amount_uplift_low", "amount_uplift_high", "probability_best", "ipw_paid_rate",
              "small_sample")


def rows_csv(rows: Iterable[ArmRow], digits: int) -> str:
    """The rows as CSV; amounts in the currency's major units (``digits`` minor digits)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    scale = 10 ** digits

    def num(value: float | None, places: int = 4) -> str:
        return "" if value is None else f"{value:.{places}f}"

    for r in rows:
        u, a = r.uplift_interval, r.amount_uplift_interval
        writer.writerow([
            r.segment, r.arm, r.recipients, r.paid, num(r.rate), num(r.rate_interval.low), num(r.rate_interval.high),
            num(r.amount_per_recipient / scale, digits), num(r.amount_interval.low / scale, digits),
            num(r.amount_interval.high / scale, digits), num(r.uplift), num(u.low if u else None),
            num(u.high if u else None),
            num(None if r.amount_uplift is None else r.amount_uplift / scale, digits),
            num(a.low / scale if a else None, digits), num(a.high / scale if a else None, digits),
            num(r.probability_best, 3), num(r.ipw_rate), "yes" if r.small else "no"])
    return out.getvalue()
