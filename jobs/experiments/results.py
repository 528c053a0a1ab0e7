"""An experiment's results read from the ledger: the report's rows, the export, imported outcomes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.numbers import get_currency_precision

from billcast.renderer import RecordError

from ..campaign import Campaign
from ..ledger import ImportedPayment, Ledger, Result
from .report import ArmRow, Observation, experiment_rows

EXPORT_FIELDS = ("customer_id", "wave", "segment", "arm", "propensity", "holdout", "contacted", "paid", "amount")
OUTCOME_FIELDS = ("customer_id", "paid_at", "amount", "currency", "reference")


def results(ledger: Ledger, campaign: Campaign) -> list[Result]:
    assert campaign.experiment is not None
    return ledger.experiment_results(campaign.id, window_days=campaign.experiment.window_days)


def report_rows(ledger: Ledger, campaign: Campaign) -> tuple[list[ArmRow], str]:
    """The report's rows, and where outcomes came from ("imported" or "payments")."""
    assert campaign.experiment is not None
    observed = [Observation(r.allocation.segment, r.allocation.arm, r.allocation.propensity, r.paid, r.amount)
                for r in results(ledger, campaign) if r.contacted]
    source = "imported" if ledger.has_imported_outcomes(campaign.id) else "payments"
    arms = [arm.variant for arm in campaign.experiment.arms]
    return experiment_rows(observed, arms, campaign.experiment.metric), source


def export_csv(ledger: Ledger, campaign: Campaign) -> str:
    """Every allocation with its outcome: customer id, wave, segment, arm, propensity, holdout, outcome, amount."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for r in results(ledger, campaign):
        a = r.allocation
        writer.writerow([a.customer_id, a.wave, a.segment, a.arm or "", f"{a.propensity:.6f}",
                         "yes" if a.arm is None else "no", "yes" if r.contacted else "no",
                         "yes" if r.paid else "no", r.amount])
    return out.getvalue()


def read_outcomes(path: Path) -> Iterator[ImportedPayment]:
    """Payments from the creditor's books as CSV (customer_id, paid_at, amount, currency, reference); amounts
    in major units (``12.50``); a bad row is a RecordError naming its line and column."""
    from decimal import Decimal, InvalidOperation

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in OUTCOME_FIELDS if name not in (reader.fieldnames or ())]
        if missing:
            raise RecordError(f"needs the columns {', '.join(OUTCOME_FIELDS)}; missing {', '.join(missing)}",
                              source=str(path))
        for row in reader:
            line = reader.line_num
            try:
                paid_at = datetime.fromisoformat(row["paid_at"])
                paid_at = paid_at.replace(tzinfo=UTC) if paid_at.tzinfo is None else paid_at.astimezone(UTC)
            except ValueError:
                raise RecordError(f"not an ISO 8601 time: {row['paid_at']!r}", line=line, field="paid_at",
                                  source=str(path)) from None
            currency = (row["currency"] or "").upper()
            try:
                digits = get_currency_precision(currency)
                minor = Decimal(row["amount"]).scaleb(digits)
            except (InvalidOperation, ValueError, KeyError):
                raise RecordError(f"not an amount in {currency or 'a known currency'}: {row['amount']!r}",
                                  line=line, field="amount", source=str(path)) from None
            if minor != minor.to_integral_value() or minor < 0:
                raise RecordError(f"must be a non-negative amount with at most {digits} decimals, got "
                                  f"{row['amount']!r}", line=line, field="amount", source=str(path))
            yield ImportedPayment(row["customer_id"], paid_at, int(minor), currency, row["reference"])
