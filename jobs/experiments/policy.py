"""How an experiment allocates recipients to arms: fixed weights, or Thompson sampling over what earlier
waves brought in. Pure: outcomes in, propensities out; the same inputs and seed give the same numbers.

A *propensity* is the probability with which an arm was chosen for a recipient. Each recipient's arm is
drawn from the propensities with a uniform number derived from the seed, the wave and the customer id
(:func:`uniform`), so a resumed or re-run wave allocates exactly as before, and an analyst can evaluate
any other policy offline from the recorded propensities.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Metric = Literal["paid", "amount"]
POSTERIOR_DRAWS = 20_000  # Monte Carlo draws for P(arm is best); 1/sqrt(draws) < 0.01
PRIOR_AMOUNT_WEIGHT = 1.0  # pseudo-observations of the pooled mean amount behind each arm's mean


@dataclass(frozen=True)
class ArmOutcomes:
    """What one arm brought in, in one segment, so far: recipients, how many paid, and how much (minor units)."""

    recipients: int = 0
    paid: int = 0
    amount: int = 0
    amount_sq: float = 0.0  # sum of squared paid amounts, for the spread of amounts

    def __post_init__(self) -> None:
        if not 0 <= self.paid <= self.recipients or self.amount < 0:
            raise ValueError(f"inconsistent outcomes: {self}")


def fixed_propensities(weights: Sequence[float]) -> tuple[float, ...]:
    """The arms' shares for fixed weights (any positive numbers)."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    return tuple(w / total for w in weights)


def with_floor(shares: Sequence[float], floor: float) -> tuple[float, ...]:
    """``shares`` mixed with a uniform floor, so every arm keeps at least ``floor`` of the traffic."""
    n = len(shares)
    if not 0 <= floor * n <= 1:
        raise ValueError(f"an exploration floor of {floor} leaves nothing to learn with {n} arms")
    return tuple(floor + (1 - n * floor) * share for share in shares)


def _rng(seed: int, *labels: object) -> np.random.Generator:
    text = "\0".join(str(part) for part in (seed, *labels)).encode("utf-8")
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text).digest()[:8], "big"))


def posterior_draws(outcomes: Sequence[ArmOutcomes], metric: Metric, rng: np.random.Generator,
                    draws: int = POSTERIOR_DRAWS) -> np.ndarray:
    """Draws of each arm's value per recipient (rows: draws, columns: arms).

    ``paid``: the paid rate under a Beta(1 + paid, 1 + unpaid) posterior. ``amount``: that rate times the
    mean amount of a payment, drawn from a normal posterior around the arm's mean (shrunk towards the pooled
    mean by one pseudo-payment, its spread the pooled spread over the payments seen), so an arm that
    brings in fewer but larger payments can win.
    """
    paid = np.array([o.paid for o in outcomes], dtype=float)
    unpaid = np.array([o.recipients - o.paid for o in outcomes], dtype=float)
    rates = rng.beta(1 + paid, 1 + unpaid, size=(draws, len(outcomes)))
    if metric == "paid":
        return rates
    total_paid = paid.sum()
    pooled_mean = sum(o.amount for o in outcomes) / total_paid if total_paid else 1.0
    pooled_sq = sum(o.amount_sq for o in outcomes) / total_paid if total_paid else 1.0
    pooled_sd = max(np.sqrt(max(pooled_sq - pooled_mean ** 2, 0.0)), pooled_mean * 0.1, 1e-9)
    means = np.array([(o.amount + PRIOR_AMOUNT_WEIGHT * pooled_mean) / (o.paid + PRIOR_AMOUNT_WEIGHT)
                      for o in outcomes])
    sds = pooled_sd / np.sqrt(paid + PRIOR_AMOUNT_WEIGHT)
    amounts = np.maximum(rng.normal(means, sds, size=(draws, len(outcomes))), 0.0)
    return rates * amounts


def probability_best(draws: np.ndarray) -> tuple[float, ...]:
    """For each arm (column), the share of draws in which it is the best; ties split evenly."""
    best = draws.max(axis=1, keepdims=True)
    winners = draws == best
    share = (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)
    return tuple(float(p) for p in share)


def thompson_propensities(outcomes: Sequence[ArmOutcomes], *, metric: Metric, floor: float, seed: int,
                          segment: str, wave: int) -> tuple[float, ...]:
    """Thompson sampling in the open: each arm's chance of being best given earlier waves, with a floor.

    Allocating a recipient to an arm with its probability of being best is what drawing one posterior
    sample per recipient does on average; computing the probabilities once per segment and wave makes
    them exact propensities to record. Deterministic for the seed, segment, wave and outcomes.
    """
    if not outcomes:
        raise ValueError("an experiment needs at least one arm")
    if len(set(outcomes)) == 1:  # nothing tells the arms apart: exactly even, not even up to sampling noise
        return with_floor((1 / len(outcomes),) * len(outcomes), floor)
    draws = posterior_draws(outcomes, metric, _rng(seed, "thompson", segment, wave))
    return with_floor(probability_best(draws), floor)


def uniform(seed: int, wave: int, customer_id: str) -> float:
    """A number in [0, 1) fixed by the seed, the wave and the customer: the recipient's draw."""
    digest = hashlib.sha256(f"{seed}\0{wave}\0{customer_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def pick(propensities: Sequence[float], u: float) -> int:
    """The arm whose slice of [0, 1) holds ``u``, slices laid out in arm order."""
    edge = 0.0
    for index, share in enumerate(propensities):
        edge += share
        if u < edge:
            return index
    return max(i for i, share in enumerate(propensities) if share > 0)  # u within rounding of 1.0
