"""The run's side of an experiment: which records it covers, in which wave, held out or on which arm.

Shares are computed once per wave and segment from what earlier waves brought in, kept in the ledger,
and read back on every later run of that wave; each allocation is kept too (the first one recorded
wins), so a resumed or re-run wave allocates exactly as it first did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..campaign import Campaign, Choice, Experiment
from ..experiments.allocate import Allocation, allocate, fixed_shares, takes_part, wave_of
from ..experiments.policy import ArmOutcomes, thompson_propensities
from ..ledger import Ledger


@dataclass(frozen=True)
class Placed:
    """A record the experiment covers: its allocation, and the storyboard for an arm (None: held out)."""

    allocation: Allocation
    choice: Choice | None

    def manifest(self) -> dict[str, Any]:
        a = self.allocation
        return {"wave": a.wave, "segment": a.segment, "propensity": f"{a.propensity:.6f}"}


@dataclass
class Allocator:
    """Allocates the records of waves up to ``wave``; a record of a later wave is left ``waiting``."""

    campaign: Campaign
    ledger: Ledger
    wave: int
    _shares: dict[tuple[int, str], tuple[float, ...]] = field(default_factory=dict)

    @property
    def experiment(self) -> Experiment:
        assert self.campaign.experiment is not None
        return self.campaign.experiment

    def covers(self, values: Mapping[str, Any]) -> bool:
        """Whether the experiment covers the record (raises ChoiceError when its ``when`` fails on it)."""
        return takes_part(self.experiment, values, self.campaign.source)

    def later_wave(self, customer_id: str) -> int | None:
        """The customer's wave when it comes after this run's: nothing is allocated for them yet."""
        wave = wave_of(self.experiment, customer_id)
        return wave if wave > self.wave else None

    def place(self, customer_id: str, values: Mapping[str, Any]) -> Placed:
        """Allocate the record (or read back its allocation) and say what it gets."""
        fresh = allocate(self.experiment, customer_id, values, self.shares, self.campaign.source)
        kept = self.ledger.allocate_once(campaign_id=self.campaign.id, customer_id=customer_id, wave=fresh.wave,
                                         segment=fresh.segment, arm=fresh.arm, propensity=fresh.propensity)
        allocation = Allocation(kept.wave, kept.segment, kept.arm, kept.propensity)
        if allocation.arm is None:
            return Placed(allocation, None)
        arm = self.experiment.arm(allocation.arm)
        return Placed(allocation, Choice(storyboard=arm.storyboard, name=arm.name, variant=arm.variant, rule=-1))

    def shares(self, wave: int, segment: str) -> tuple[float, ...]:
        """The wave's shares for a segment, in arm order: kept ones, else computed now and kept."""
        if (wave, segment) not in self._shares:
            names = [arm.variant for arm in self.experiment.arms]
            kept = self.ledger.shares(self.campaign.id, wave, segment)
            if kept is None:
                kept = self.ledger.keep_shares(campaign_id=self.campaign.id, wave=wave, segment=segment,
                                               shares=dict(zip(names, self._compute(wave, segment))))
            self._shares[wave, segment] = tuple(kept[name] for name in names)
        return self._shares[wave, segment]

    def _compute(self, wave: int, segment: str) -> tuple[float, ...]:
        e = self.experiment
        if e.policy == "fixed":
            return fixed_shares(e)
        results = self.ledger.experiment_results(self.campaign.id, window_days=e.window_days, before_wave=wave,
                                                 segment=segment)
        outcomes = []
        for arm in e.arms:
            mine = [r for r in results if r.allocation.arm == arm.variant and r.contacted]
            outcomes.append(ArmOutcomes(len(mine), sum(r.paid for r in mine), sum(r.amount for r in mine),
                                        float(sum(r.amount ** 2 for r in mine))))
        return thompson_propensities(outcomes, metric=e.metric, floor=e.floor, seed=e.seed, segment=segment,
                                     wave=wave)
