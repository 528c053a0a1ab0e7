"""Allocation policies and the statistics of experiments, against numbers worked out by hand."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from billcast.jobs.experiments.policy import (ArmOutcomes, fixed_propensities, pick, probability_best,
                                              thompson_propensities, uniform, with_floor)
from billcast.jobs.experiments.stats import (hajek, mean_difference, mean_interval, rate_difference, too_small,
                                             wilson)


def test_fixed_weights_become_shares_and_the_floor_mixes_in_uniformly() -> None:
    assert fixed_propensities([3, 1]) == (0.75, 0.25)
    assert with_floor((1.0, 0.0, 0.0), 0.05) == pytest.approx((0.9, 0.05, 0.05))
    with pytest.raises(ValueError):
        with_floor((0.5, 0.5), 0.6)
    with pytest.raises(ValueError):
        fixed_propensities([0, 0])


@pytest.mark.parametrize("metric", ["paid", "amount"])
def test_thompson_propensities_are_deterministic_sum_to_one_and_respect_the_floor(metric) -> None:
    outcomes = [ArmOutcomes(200, 30, 30 * 9000, 30 * 9000.0 ** 2), ArmOutcomes(200, 50, 50 * 4000, 50 * 4000.0 ** 2),
                ArmOutcomes(10, 1, 7000, 7000.0 ** 2)]
    first = thompson_propensities(outcomes, metric=metric, floor=0.05, seed=7, segment="late", wave=2)
    again = thompson_propensities(outcomes, metric=metric, floor=0.05, seed=7, segment="late", wave=2)
    other = thompson_propensities(outcomes, metric=metric, floor=0.05, seed=8, segment="late", wave=2)
    assert first == again and first != other
    assert math.isclose(sum(first), 1.0) and all(0.05 <= p <= 1 for p in first)


def test_with_nothing_learned_yet_the_arms_share_evenly() -> None:
    shares = thompson_propensities([ArmOutcomes()] * 3, metric="paid", floor=0.0, seed=1, segment="s", wave=1)
    assert shares == pytest.approx((1 / 3,) * 3, abs=1e-12)


def test_the_amount_metric_prefers_fewer_larger_payments_when_they_bring_more() -> None:
    many_small = ArmOutcomes(1000, 400, 400 * 2000, 400 * 2000.0 ** 2)   # 40 % pay 20.00: 8.00 a recipient
    few_large = ArmOutcomes(1000, 250, 250 * 6000, 250 * 6000.0 ** 2)   # 25 % pay 60.00: 15.00 a recipient
    by_paid = thompson_propensities([many_small, few_large], metric="paid", floor=0, seed=1, segment="s", wave=3)
    by_amount = thompson_propensities([many_small, few_large], metric="amount", floor=0, seed=1, segment="s", wave=3)
    assert by_paid[0] > 0.99 and by_amount[1] > 0.99


def test_most_traffic_moves_to_a_clearly_better_arm_within_a_few_waves_and_the_floor_holds() -> None:
    rates = (0.10, 0.30, 0.12)
    rng = np.random.default_rng(3)
    outcomes = [ArmOutcomes() for _ in rates]
    for wave in range(1, 5):
        shares = thompson_propensities(outcomes, metric="paid", floor=0.05, seed=11, segment="s", wave=wave)
        arms = [pick(shares, uniform(11, wave, f"C{wave}-{i}")) for i in range(400)]
        for arm, n in Counter(arms).items():
            paid = int((rng.random(n) < rates[arm]).sum())
            old = outcomes[arm]
            outcomes[arm] = ArmOutcomes(old.recipients + n, old.paid + paid, old.amount + paid, old.amount_sq + paid)
    assert shares[1] > 0.85
    assert min(shares) >= 0.05


def test_each_recipient_draws_the_same_arm_on_a_rerun_and_the_draws_follow_the_propensities() -> None:
    shares = (0.2, 0.5, 0.3)
    arms = [pick(shares, uniform(5, 2, f"IT-{i:05d}")) for i in range(20000)]
    assert arms == [pick(shares, uniform(5, 2, f"IT-{i:05d}")) for i in range(20000)]
    counts = Counter(arms)
    for arm, share in enumerate(shares):
        assert abs(counts[arm] / len(arms) - share) < 0.015
    assert pick(shares, 0.0) == 0 and pick(shares, 0.2) == 1 and pick(shares, 0.999999) == 2
    assert pick((0.5, 0.5, 0.0), 1 - 1e-17) == 1  # rounding never lands on an arm with no share


def test_probability_best_splits_ties() -> None:
    draws = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert probability_best(draws) == (0.25, 0.75, 0.0)


# --- statistics, against hand-computed figures ---------------------------------------------------


def test_wilson_interval_for_ten_in_a_hundred() -> None:
    # centre (0.1 + 1.96^2/200) / (1 + 1.96^2/100) = 0.11480; half-width 0.05957
    interval = wilson(10, 100)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0552, 0.1744)
    assert wilson(0, 0) == wilson(0, 0) and wilson(0, 0).low == 0.0 and wilson(0, 0).high == 1.0
    assert wilson(0, 20).low == 0.0 and wilson(20, 20).high == 1.0


def test_newcombes_worked_example_of_a_difference_of_rates() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10
    diff, interval = rate_difference(56, 70, 48, 80)
    assert diff == pytest.approx(0.2)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def test_amount_means_and_their_difference() -> None:
    mean, interval = mean_interval([0, 0, 100, 100])  # sd 57.735, se 28.868
    assert mean == 50 and interval.low == pytest.approx(50 - 1.959964 * 28.8675, abs=1e-3)
    diff, band = mean_difference([100, 100, 0, 0], [0, 0, 0, 20])  # 50 - 5; se sqrt(833.33 + 25)
    assert diff == 45 and band.high - diff == pytest.approx(1.959964 * math.sqrt(2500 / 3 + 100 / 4), abs=1e-3)


def test_hajek_weights_each_outcome_by_its_inverse_propensity() -> None:
    # two recipients got the arm with p = 0.5 (paid 1, 0), one with p = 0.1 (paid 1):
    # (2*1 + 2*0 + 10*1) / (2 + 2 + 10) = 12 / 14
    assert hajek([1, 0, 1], [0.5, 0.5, 0.1]) == pytest.approx(12 / 14)
    assert hajek([], []) is None


def test_small_groups_are_flagged() -> None:
    assert too_small(29, 10) and too_small(500, 4) and not too_small(30, 5)


def test_the_report_matches_a_small_example_computed_by_hand() -> None:
    from billcast.jobs.experiments.report import Observation, experiment_rows, rows_csv

    # arm a: 10 of 40 paid 10.00 each; arm b: 20 of 40 paid 5.00 each; holdout: 4 of 40 paid 10.00 each
    observations = ([Observation("late", "a", 0.5, i < 10, 1000 if i < 10 else 0) for i in range(40)]
                    + [Observation("late", "b", 0.5, i < 20, 500 if i < 20 else 0) for i in range(40)]
                    + [Observation("late", None, 0.1, i < 4, 1000 if i < 4 else 0) for i in range(40)])
    a, b, holdout = experiment_rows(observations, ["a", "b"], "paid")
    assert (a.arm, a.recipients, a.paid, a.rate) == ("a", 40, 10, 0.25)
    # Wilson: centre (0.25 + z^2/80) / (1 + z^2/40) = 0.27191, half-width 0.13003
    assert (round(a.rate_interval.low, 4), round(a.rate_interval.high, 4)) == (0.1419, 0.4019)
    # uplift 0.25 - 0.10; Newcombe: 0.15 -/+ sqrt((0.25-0.1419)^2 + (0.2305-0.10)^2), sqrt((0.4019-0.25)^2 + (0.10-0.0396)^2)
    assert a.uplift == pytest.approx(0.15)
    assert (round(a.uplift_interval.low, 3), round(a.uplift_interval.high, 3)) == (-0.019, 0.314)
    assert b.uplift == pytest.approx(0.40) and b.uplift_interval.low > 0  # b's uplift is clearly above zero
    # amounts per recipient: a 250 (minor units), the holdout 100: uplift 150
    assert (a.amount_per_recipient, holdout.amount_per_recipient, a.amount_uplift) == (250.0, 100.0, 150.0)
    assert b.probability_best > 0.95 and a.probability_best == pytest.approx(1 - b.probability_best)
    assert holdout.arm == "holdout" and holdout.small and holdout.probability_best is None
    assert a.ipw_rate is None  # one propensity for everyone: no adaptive weighting needed
    lines = rows_csv([a, b, holdout], 2).splitlines()
    assert lines[1] == "late,a,40,10,0.2500,0.1419,0.4019,2.50,1.14,3.86,0.1500,-0.0195,0.3135,1.50,-0.15,3.15,0.012,,no"


def test_small_arms_are_flagged_not_ranked_and_adaptive_traffic_gets_an_ipw_estimate() -> None:
    from billcast.jobs.experiments.report import Observation, experiment_rows

    observations = ([Observation("s", "a", 0.8 if i % 2 else 0.2, i % 3 == 0, 100) for i in range(60)]
                    + [Observation("s", "b", 0.5, True, 100) for _ in range(10)])
    a, b = experiment_rows(observations, ["a", "b"], "paid")
    assert b.small and b.probability_best is None and not b.ranked
    assert a.probability_best is None  # nothing to rank it against
    assert a.ipw_rate is not None and 0 <= a.ipw_rate <= 1
