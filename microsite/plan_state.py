"""A payment plan's state as the page shows it in its pay card: installments paid, the next one, a card to update.

Pure. :class:`PlanView` is what the page needs to know of a plan (the ledger's
plan, in major units); :func:`plan_context` turns it into the texts and links of
the ``pay_box`` macro in ``parts.html``, the same whether the whole page is built
(``build_site(plan=...)``) or only its pay card is replaced when the plan moves
on (``build.plan_block``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from .links import pay_link
from .locales import Formatter

PLAN_VIEW_STATUSES = ("active", "needs_card", "broken")


@dataclass(frozen=True)
class PlanView:
    """A running or stopped plan, as its page shows it (a completed plan shows the paid page instead)."""

    status: str  # active | needs_card | broken
    paid: int  # installments paid
    count: int  # installments in all
    next_due: dt.date | None  # the first unpaid installment's due date
    next_amount: Decimal | None  # and its amount, in major units
    open_balance: Decimal  # what is left to pay, in major units
    currency: str

    def __post_init__(self) -> None:
        if self.status not in PLAN_VIEW_STATUSES:
            raise ValueError(f"status must be one of {', '.join(PLAN_VIEW_STATUSES)}, got {self.status!r}")


def plan_context(view: PlanView, t: Callable[..., Markup], fmt: Formatter, pay_url: str,
                 token: str) -> dict[str, Any]:
    """The texts and the one button of the plan's pay card."""
    money = (lambda amount: fmt.money(amount, view.currency))
    notes: list[Markup] = []
    button = None
    due = {"amount": money(view.next_amount), "date": fmt.date(view.next_due)} \
        if view.next_due is not None and view.next_amount is not None else None
    if view.status == "active" and due:
        notes.append(t("plan_state_next", **due))
    elif view.status == "needs_card" and due:
        notes.append(t("plan_state_needs_card", **due))
        button = {"href": pay_link(pay_url, token, "card", "site"), "label": t("plan_update_card")}
    elif view.status == "broken":
        notes.append(t("plan_state_broken", amount=money(view.open_balance)))
        button = {"href": pay_link(pay_url, token, "full", "site"), "label": t("pay_full")}
    return {"status": view.status, "title": t("plan_state_title"), "paid": view.paid, "count": view.count,
            "progress": t("plan_state_progress", view.count, paid=fmt.number(view.paid)), "notes": notes,
            "button": button}
