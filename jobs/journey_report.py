"""The debtor's side of a campaign's report: who was not contacted and why, open disputes, payment plans.

:func:`build_journey` is pure (rows in, frozen rows out); :func:`read_journey`
reads them from a ledger; :func:`format_journey` is the text ``billcast report``
prints after the funnel. The service's report page shows the same rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .amounts import major_units
from .ledger import PLAN_STATUSES, Dispute, Ledger, Plan

INSTALLMENT_STATES = ("paid", "scheduled", "charging", "submitted", "failed")


@dataclass(frozen=True)
class WithheldRow:
    """Recipients of one storyboard and variant the runs did not contact."""

    storyboard: str
    variant: str
    suppressed: int
    deferred: int

    @property
    def label(self) -> str:
        name = self.storyboard or "(no rule)"
        return f"{name} ({self.variant})" if self.variant else name


@dataclass(frozen=True)
class DisputeRow:
    customer_id: str
    reason: str
    opened_at: datetime
    age_days: int


@dataclass(frozen=True)
class Journey:
    withheld: tuple[WithheldRow, ...]
    reasons: tuple[tuple[str, int], ...]  # why, how many (suppressed and deferred alike)
    disputes: tuple[DisputeRow, ...]  # open, oldest first
    plans: tuple[tuple[str, int], ...]  # plan status, how many (every status)
    installments: tuple[tuple[str, int], ...]  # installment status, how many (every status)
    collected: tuple[tuple[str, Decimal], ...]  # paid through plan installments, per currency

    @property
    def suppressed(self) -> int:
        return sum(row.suppressed for row in self.withheld)

    @property
    def deferred(self) -> int:
        return sum(row.deferred for row in self.withheld)


def build_journey(withheld: Iterable[Mapping[str, Any]], disputes: Iterable[Dispute], plans: Iterable[Plan],
                  now: datetime) -> Journey:
    """Fold what the ledger holds for one campaign into a :class:`Journey`."""
    groups: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    for row in withheld:
        groups[(row["storyboard"], row["variant"])][row["status"]] += 1
        reasons[row["reason"]] += 1
    plan_states: Counter[str] = Counter()
    installment_states: Counter[str] = Counter()
    money: defaultdict[str, int] = defaultdict(int)
    for plan in plans:
        plan_states[plan.status] += 1
        for item in plan.installments:
            installment_states[item.status] += 1
            if item.status == "paid":
                money[plan.currency] += item.amount
    return Journey(
        withheld=tuple(WithheldRow(s, v, c["suppressed"], c["deferred"]) for (s, v), c in sorted(groups.items())),
        reasons=tuple(sorted(reasons.items())),
        disputes=tuple(DisputeRow(d.customer_id, d.reason, d.opened_at, max((now - d.opened_at).days, 0))
                       for d in disputes if d.status == "open"),
        plans=tuple((status, plan_states[status]) for status in PLAN_STATUSES),
        installments=tuple((status, installment_states[status]) for status in INSTALLMENT_STATES),
        collected=tuple((currency, major_units(money[currency], currency)) for currency in sorted(money)))


def read_journey(ledger: Ledger, campaign_id: str, now: datetime) -> Journey:
    return build_journey(ledger.withheld(campaign_id), ledger.disputes(campaign_id=campaign_id),
                         ledger.plans(campaign_id), now)


def format_journey(journey: Journey, table: Any, amounts: Any) -> list[str]:
    """The report's lines about the debtor's journey; ``table`` and ``amounts`` are the report's own formatters."""
    lines = ["", f"Not contacted: {journey.suppressed} suppressed, {journey.deferred} deferred"
             + (" (" + ", ".join(f"{reason} {n}" for reason, n in journey.reasons) + ")" if journey.reasons else "")]
    if journey.withheld:
        lines += table(("storyboard", "variant", "suppressed", "deferred"),
                       [(r.storyboard or "(no rule)", r.variant, str(r.suppressed), str(r.deferred))
                        for r in journey.withheld], "llrr")
    lines += ["", f"Open disputes: {len(journey.disputes)}"]
    if journey.disputes:
        lines += table(("customer", "reason", "opened", "age (days)"),
                       [(d.customer_id, d.reason, f"{d.opened_at:%Y-%m-%d}", str(d.age_days))
                        for d in journey.disputes], "lllr")
    lines += ["", "Payment plans: " + ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in journey.plans),
              "Installments: " + ", ".join(f"{n} {status}" for status, n in journey.installments)
              + f"; collected {amounts(journey.collected)}"]
    return lines
