"""``billcast experiment report|export|outcomes``: an experiment's results, its allocations, and payments
imported from the creditor's books to measure every group (the holdout included) alike."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from billcast.renderer import SettingsError

if TYPE_CHECKING:  # the commands import the campaign and ledger code when they run, not when the CLI starts
    from billcast.jobs.campaign import Campaign
    from billcast.jobs.experiments.report import ArmRow
    from billcast.jobs.ledger import Ledger


def _campaign(path: str) -> Campaign:
    from billcast.jobs.campaign import load_campaign

    campaign = load_campaign(path)
    if campaign.experiment is None:
        raise SettingsError("CAMPAIGN", f"{path} has no [experiment] table")
    return campaign


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _interval(row_low: float, row_high: float, scale: float = 100, unit: str = "%") -> str:
    return f"[{row_low * scale:.1f}, {row_high * scale:.1f}]{unit}"


def format_rows(rows: list[ArmRow], digits: int, source: str) -> str:
    """The report as aligned text: one block per segment."""
    from billcast.jobs.experiments.report import ALL

    scale = 10 ** digits
    lines = [f"Outcomes from {'imported payments' if source == 'imported' else 'payments taken through the links'}"
             + ("" if source == "imported" else " (the holdout, which got no link, shows none: import the "
                "creditor's payments with `billcast experiment outcomes` to measure uplift)")]
    segment = None
    for r in rows:
        if r.segment != segment:
            segment = r.segment
            lines += ["", f"{'ALL SEGMENTS' if segment == ALL else segment}",
                      f"  {'arm':<12} {'sent':>6} {'paid':>6} {'paid rate (95%)':>24} {'per recipient':>14} "
                      f"{'uplift (95%)':>26} {'P(best)':>8} {'IPW':>6}"]
        uplift = ("" if r.uplift is None or r.uplift_interval is None else
                  f"{r.uplift * 100:+.1f} {_interval(r.uplift_interval.low, r.uplift_interval.high)}")
        best = "" if r.probability_best is None else f"{r.probability_best:.2f}"
        ipw = "" if r.ipw_rate is None else f"{r.ipw_rate * 100:.1f}%"
        flag = "  (small: not ranked)" if r.small else ""
        lines.append(f"  {r.arm:<12} {r.recipients:>6} {r.paid:>6} "
                     f"{f'{r.rate * 100:.1f}% ' + _interval(r.rate_interval.low, r.rate_interval.high):>24} "
                     f"{r.amount_per_recipient / scale:>14.2f} {uplift:>26} {best:>8} {ipw:>6}{flag}")
    return "\n".join(lines) + "\n"


def _currency_digits(campaign: Campaign, ledger: Ledger) -> int:
    from babel.numbers import get_currency_precision

    currencies = {r.currency for r in ledger.recipients(campaign.id)}
    return get_currency_precision(currencies.pop()) if len(currencies) == 1 else 2


def cmd_report(args: argparse.Namespace) -> int:
    from billcast.jobs.experiments.report import rows_csv
    from billcast.jobs.experiments.results import report_rows
    from billcast.jobs.ledger import Ledger

    campaign = _campaign(args.campaign)
    with Ledger(campaign.ledger) as ledger:
        rows, source = report_rows(ledger, campaign)
        digits = _currency_digits(campaign, ledger)
    sys.stdout.write(format_rows(rows, digits, source))
    if args.csv:
        _write(Path(args.csv), rows_csv(rows, digits))
        print(f"table: {args.csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from billcast.jobs.experiments.results import export_csv
    from billcast.jobs.ledger import Ledger

    campaign = _campaign(args.campaign)
    with Ledger(campaign.ledger) as ledger:
        text = export_csv(ledger, campaign)
    if args.out:
        _write(Path(args.out), text)
        print(f"{text.count(chr(10)) - 1} allocations written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    from billcast.jobs.experiments.results import read_outcomes
    from billcast.jobs.ledger import Ledger

    campaign = _campaign(args.campaign)
    with Ledger(campaign.ledger) as ledger:
        added, known = ledger.import_outcomes(campaign.id, list(read_outcomes(Path(args.file))))
    print(f"{campaign.id}: {added} payments imported, {known} already known")
    return 0


def add_parsers(sub: argparse._SubParsersAction, command) -> None:
    """The ``experiment`` command and its subcommands; ``command`` makes a documented subparser."""
    p = command(sub, "experiment", "an experiment's report, its allocations as CSV, and payments to import")
    inner = p.add_subparsers(dest="experiment_command", required=True, metavar="SUBCOMMAND")
    q = command(inner, "report", "per segment and arm: paid rate, amount, uplift over the holdout, P(best)")
    q.add_argument("campaign", help="a campaign TOML file with an [experiment]")
    q.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    q.set_defaults(func=cmd_report)
    q = command(inner, "export", "every allocation: customer, wave, segment, arm, propensity, holdout, outcome")
    q.add_argument("campaign", help="a campaign TOML file with an [experiment]")
    q.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    q.set_defaults(func=cmd_export)
    q = command(inner, "outcomes", "import payments from the creditor's books (CSV: customer_id, paid_at, "
                                   "amount, currency, reference), so the holdout is measured too")
    q.add_argument("campaign", help="a campaign TOML file with an [experiment]")
    q.add_argument("file", help="the payments CSV")
    q.set_defaults(func=cmd_outcomes)
