"""How much money adaptive allocation brings in: Thompson sampling against a fixed equal split and an oracle.

A simulated population with known per-segment response: 3 arms x 4 segments, the best arm differing
between segments (one arm brings more payments but smaller ones, as a plan-first message would), and
100,000 recipients in 10 waves. Each policy allocates with the campaign code's own functions
(``billcast.jobs.experiments.policy``); every recipient's response is drawn once and shared by all
policies (common random numbers), so the ratios compare policies, not luck. The oracle knows the true
rates and sends everyone the arm with the highest expected amount.

    python bench/learning.py --quick      # 3 seeds; ends with: thompson/oracle=R1 fixed/oracle=R2
    python bench/learning.py              # 20 seeds, with the spread
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np

from billcast.jobs.experiments.policy import ArmOutcomes, fixed_propensities, pick, thompson_propensities, uniform

ARMS = ("friendly", "plan_first", "firm")
SEGMENTS = ("early_small", "early_large", "late_small", "late_large")
# True paid rates per segment (rows) and arm (columns): the best arm differs between segments.
RATES = np.array([[0.30, 0.34, 0.14],
                  [0.22, 0.48, 0.18],
                  [0.10, 0.16, 0.24],
                  [0.16, 0.36, 0.15]])
BALANCE = np.array([90.0, 420.0, 110.0, 650.0])  # mean amount owed per segment (currency units)
ARM_AMOUNT = np.array([1.0, 0.55, 1.0])  # share of the balance a payment brings (a plan's first installment)
FLOOR = 0.02
RECIPIENTS = 100_000
WAVES = 10


@dataclass(frozen=True)
class Population:
    segment: np.ndarray  # each recipient's segment index
    u_paid: np.ndarray  # the recipient's response draw: pays arm a when u_paid < RATES[segment, a]
    amount: np.ndarray  # what the recipient's full payment would be (minor units)
    ids: list[str]


def population(seed: int, n: int) -> Population:
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, len(SEGMENTS), size=n)
    amount = np.round(BALANCE[segment] * rng.lognormal(0.0, 0.35, size=n) * 100)
    return Population(segment, rng.random(n), amount, [f"SIM-{seed}-{i:06d}" for i in range(n)])


def collected(pop: Population, idx: np.ndarray, arms: np.ndarray) -> np.ndarray:
    paid = pop.u_paid[idx] < RATES[pop.segment[idx], arms]
    return np.where(paid, np.round(pop.amount[idx] * ARM_AMOUNT[arms]), 0.0)


def run_policy(pop: Population, policy: str, seed: int, waves: int) -> float:
    n = len(pop.segment)
    total = 0.0
    outcomes = {s: [ArmOutcomes() for _ in ARMS] for s in range(len(SEGMENTS))}
    for wave, idx in enumerate(np.array_split(np.arange(n), waves), start=1):
        arms = np.empty(len(idx), dtype=int)
        for s in range(len(SEGMENTS)):
            members = idx[pop.segment[idx] == s]
            if policy == "oracle":
                arms[pop.segment[idx] == s] = int(np.argmax(RATES[s] * ARM_AMOUNT))
                continue
            shares = (fixed_propensities([1] * len(ARMS)) if policy == "fixed" else
                      thompson_propensities(outcomes[s], metric="amount", floor=FLOOR, seed=seed,
                                            segment=SEGMENTS[s], wave=wave))
            arms[pop.segment[idx] == s] = [pick(shares, uniform(seed, wave, pop.ids[i])) for i in members]
        amounts = collected(pop, idx, arms)
        total += float(amounts.sum())
        for s in range(len(SEGMENTS)):
            mask = pop.segment[idx] == s
            for a in range(len(ARMS)):
                got = amounts[mask & (arms == a)]
                old = outcomes[s][a]
                outcomes[s][a] = ArmOutcomes(old.recipients + len(got), old.paid + int((got > 0).sum()),
                                             old.amount + int(got.sum()), old.amount_sq + float((got ** 2).sum()))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 20")
    parser.add_argument("--seeds", type=int, help="how many seeds (default 20, or 3 with --quick)")
    parser.add_argument("--recipients", type=int, default=RECIPIENTS)
    parser.add_argument("--waves", type=int, default=WAVES)
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 20)
    print(f"{len(ARMS)} arms x {len(SEGMENTS)} segments, {args.recipients:,} recipients in {args.waves} waves, "
          f"exploration floor {FLOOR}, {seeds} seeds")
    best = [ARMS[int(np.argmax(RATES[s] * ARM_AMOUNT))] for s in range(len(SEGMENTS))]
    print("best arm per segment: " + ", ".join(f"{s}={b}" for s, b in zip(SEGMENTS, best)))
    ratios: dict[str, list[float]] = {"thompson": [], "fixed": []}
    started = time.monotonic()
    for seed in range(1, seeds + 1):
        pop = population(seed, args.recipients)
        oracle = run_policy(pop, "oracle", seed, args.waves)
        row = {name: run_policy(pop, name, seed, args.waves) / oracle for name in ratios}
        for name, ratio in row.items():
            ratios[name].append(ratio)
        print(f"seed {seed:>2}: oracle {oracle / 100:,.0f}  thompson/oracle {row['thompson']:.3f}  "
              f"fixed/oracle {row['fixed']:.3f}")
    for name, values in ratios.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>8}/oracle: mean {statistics.mean(values):.3f}, sd {spread:.3f}, "
              f"min {min(values):.3f}, max {max(values):.3f}")
    print(f"({time.monotonic() - started:.1f} s)")
    print(f"thompson/oracle={statistics.mean(ratios['thompson']):.3f} "
          f"fixed/oracle={statistics.mean(ratios['fixed']):.3f}")


if __name__ == "__main__":
    main()
