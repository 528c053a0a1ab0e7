"""Amounts in exact minor units, as payment providers take them, and how a plan splits a balance over months."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

from babel.numbers import get_currency_precision

from billcast.renderer import PaymentError

from .ledger import Recipient


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor units (Babel's precision: JPY 0, EUR 2, KWD 3), exactly.

    Raises :class:`PaymentError` when the amount has more decimals than the currency has.
    """
    digits = get_currency_precision(currency)
    scaled = Decimal(amount).scaleb(digits)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise PaymentError(f"amount_due: {amount} {currency} has more decimals than {currency}'s {digits}")
    return int(scaled)


def installments(total: int, count: int) -> list[int]:
    """``total`` minor units in ``count`` installments that differ by at most one unit, larger ones first."""
    base, extra = divmod(total, count)
    return [base + (1 if n < extra else 0) for n in range(count)]


def major_units(amount: int, currency: str) -> Decimal:
    """Integer minor units as an exact decimal in major units: ``18515`` EUR is ``Decimal("185.15")``."""
    digits = get_currency_precision(currency)
    return Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day where it has no such day (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def plan_schedule(total: int, count: int, first_due: date) -> list[tuple[date, int]]:
    """Each installment's due date (monthly from ``first_due``, always counted from it) and minor units."""
    return [(add_months(first_due, n), amount) for n, amount in enumerate(installments(total, count))]


def expected_amount(recipient: Recipient, option: str, paid: int = 0) -> int:
    """What a payment of ``option`` should be, in minor units: the amount due less ``paid`` (installments of a
    plan that stopped), or the plan's first installment."""
    total = minor_units(recipient.amount_due, recipient.currency)
    if option == "plan":
        if not recipient.plan_installments:
            raise PaymentError("option: plan, but the recipient has no payment plan on offer")
        return installments(total, recipient.plan_installments)[0]
    return total - paid
