"""A payment plan between the ledger and the page: what the page shows of it, and what is still owed."""

from __future__ import annotations

from billcast.microsite import PlanView

from .amounts import major_units
from .ledger import Plan


def plan_view(plan: Plan | None) -> PlanView | None:
    """What the recipient's page shows of their plan; None without a plan, or once it is completed (paid page)."""
    if plan is None or plan.status == "completed":
        return None
    upcoming = plan.next
    return PlanView(status=plan.status, paid=len(plan.paid), count=plan.count,
                    next_due=upcoming.due_date if upcoming else None,
                    next_amount=major_units(upcoming.amount, plan.currency) if upcoming else None,
                    open_balance=major_units(plan.open_balance, plan.currency), currency=plan.currency)


def paid_toward(plan: Plan | None) -> int:
    """Minor units a plan has paid toward the balance: what a payment in full no longer has to cover."""
    return plan.paid_amount if plan is not None else 0
