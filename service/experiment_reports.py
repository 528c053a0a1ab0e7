"""An experiment's report page beside its campaign's: per segment, each arm's paid rate with its 95% interval
against the holdout's, uplift, amount per recipient, the probability each arm is best, and the table as CSV.

``GET /reports/<id>/experiment`` and ``GET /reports/<id>/experiment.csv``, behind the admin token. The
numbers come from ``jobs.experiments`` (the same as ``billcast experiment report``); this module lays them out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from babel.numbers import get_currency_precision
from flask import Blueprint, Response, abort, render_template

from billcast.jobs.experiments.report import ALL, ArmRow, rows_csv
from billcast.jobs.experiments.results import report_rows
from billcast.jobs.ledger import LedgerError

from .auth import admin_required
from .context import service
from .reports import RATE_SCALES, campaign_or_404, common, page

blueprint = Blueprint("experiments", __name__, url_prefix="/reports", template_folder="templates")


@dataclass(frozen=True)
class Whisker:
    """One row of an interval chart: the rate as a dot, its 95% interval as a line, in SVG units."""

    y: float
    label: str
    low: float
    high: float
    dot: float
    value: str
    tone: str  # "holdout", "small" or ""


@dataclass(frozen=True)
class IntervalChart:
    width: int
    height: int
    rows: tuple[Whisker, ...]
    grid: tuple[tuple[float, str], ...]
    reference: float | None  # the holdout's rate, drawn across every row
    summary: str


def interval_chart(rows: list[ArmRow]) -> IntervalChart:
    """Each arm's paid rate and 95% interval on one scale (20, 40 or 100 %), the holdout last and marked."""
    label_w, plot_w, value_w, row_h, top = 120, 300, 90, 30, 12
    scale = next(s for s in RATE_SCALES if max((r.rate_interval.high for r in rows), default=0.0) <= s)
    x = lambda rate: round(label_w + plot_w * rate / scale, 1)  # noqa: E731
    whiskers = tuple(Whisker(y=top + i * row_h + row_h / 2, label=r.arm, low=x(r.rate_interval.low),
                             high=x(r.rate_interval.high), dot=x(r.rate), value=f"{r.rate:.1%}",
                             tone="holdout" if r.arm == "holdout" else ("small" if r.small else ""))
                     for i, r in enumerate(rows))
    holdout = next((r for r in rows if r.arm == "holdout"), None)
    height = top + len(rows) * row_h + 24
    grid = tuple((x(scale * q / 4), f"{scale * q / 4:.0%}") for q in range(5))
    summary = "Paid rate with its 95% interval: " + ", ".join(
        f"{r.arm} {r.rate:.1%} ({r.rate_interval.low:.1%} to {r.rate_interval.high:.1%})" for r in rows)
    return IntervalChart(width=label_w + plot_w + value_w, height=height, rows=whiskers, grid=grid,
                         reference=x(holdout.rate) if holdout else None, summary=summary)


def _digits(campaign_id: str, ledger) -> int:
    currencies = {r.currency for r in ledger.recipients(campaign_id)}
    return get_currency_precision(currencies.pop()) if len(currencies) == 1 else 2


def _experiment_or_404(campaign_id: str):
    campaign = campaign_or_404(campaign_id)
    if campaign.experiment is None:
        abort(404)
    return campaign


@blueprint.get("/<campaign_id>/experiment")
@admin_required
def show(campaign_id: str) -> Response:
    campaign = _experiment_or_404(campaign_id)
    ledger = service().ledger(campaign)
    try:
        rows, source = report_rows(ledger, campaign)
        digits = _digits(campaign.id, ledger)
    except LedgerError as exc:
        return page(render_template("reports/error.html", campaign=campaign, message=str(exc), **common()), 503)
    by_segment: dict[str, list[ArmRow]] = defaultdict(list)
    for row in rows:
        by_segment[row.segment].append(row)
    segments = [(segment, group, interval_chart(group)) for segment, group in by_segment.items()]
    segments.sort(key=lambda item: (item[0] != ALL, item[0]))
    return page(render_template("reports/experiment.html", campaign=campaign, experiment=campaign.experiment,
                                segments=segments, source=source, scale=10 ** digits, all_label=ALL, **common()))


@blueprint.get("/<campaign_id>/experiment.csv")
@admin_required
def table(campaign_id: str) -> Response:
    campaign = _experiment_or_404(campaign_id)
    ledger = service().ledger(campaign)
    rows, _ = report_rows(ledger, campaign)
    name = f"{campaign.id}-experiment-{datetime.now(UTC):%Y%m%d}.csv"
    return Response(rows_csv(rows, _digits(campaign.id, ledger)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
