"""Amounts in exact minor units, as payment providers take them, and how a plan splits a balance."""

from __future__ import annotations

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


def expected_amount(recipient: Recipient, option: str) -> int:
    """What a payment of ``option`` should be, in minor units: the amount due, or the plan's first installment."""
    total = minor_units(recipient.amount_due, recipient.currency)
    if option == "plan":
        if not recipient.plan_installments:
            raise PaymentError("option: plan, but the recipient has no payment plan on offer")
        return installments(total, recipient.plan_installments)[0]
    return total
