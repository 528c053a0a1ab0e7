"""Campaign reports for the billing team, behind the admin token.

``GET /reports/`` lists the campaigns; ``GET /reports/<id>`` shows one: the
funnel per storyboard and variant, collection by days past due and payments by
source, each as an inline SVG chart with a table of the same numbers, and
``GET /reports/<id>/reconciliation.csv`` downloads the paid payments. The
numbers come from ``jobs.report`` (the same as ``billcast report``); this module
only lays them out. The pages run no script and load nothing from elsewhere:
their Content-Security-Policy says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from hashlib import sha256
from typing import Any

from babel.numbers import format_currency
from flask import Blueprint, Response, abort, render_template, request, url_for
from werkzeug.routing import BuildError

from billcast.jobs.campaign import Campaign
from billcast.jobs.ledger import LedgerError
from billcast.jobs.report import (STAGE_LABELS, STAGES, Amounts, BucketRow, FunnelRow, Report, SourceRow, campaign_report,
                         reconciliation_csv)

from .auth import admin_required
from .context import service

__all__ = ["CSP", "blueprint"]

blueprint = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates")

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
STYLESHEET = "templates/reports/reports.css"
STAGE_TITLES = {"published": "Published", "viewed": "Viewed", "played": "Played", "watched_half": "Watched half",
                "clicked": "Clicked to pay", "paid": "Paid"}
SOURCE_TITLES = {"video": "Video call to action", "site": "Page button", "qr": "QR code (paper bill)",
                 "email": "Email link"}
SOURCE_LABELS = {"video": "Video", "site": "Page", "qr": "QR code", "email": "Email"}
RATE_SCALES = (0.2, 0.4, 1.0)  # the collection chart's top: the smallest that holds the highest rate


# --- numbers as the page shows them ---------------------------------------------------------------


def count(n: int) -> str:
    return f"{n:,}"


def percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    share = part / whole
    return f"{share:.0%}" if share in (0, 1) or share >= 0.1 else f"{share:.1%}"


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale="en_US")


def moneys(amounts: Amounts) -> str:
    return ", ".join(money(amount, currency) for currency, amount in amounts) or "–"


# --- charts: geometry here, drawing in the templates ----------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    note: str = ""
    tone: str = ""


@dataclass(frozen=True)
class Chart:
    """One inline SVG chart: its box, its bars and axis lines, and a one-sentence summary for its title."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    summary: str
    track: float = 0.0  # the full bar length (horizontal charts) or height (vertical ones)
    grid: tuple[tuple[float, str], ...] = ()


def funnel_chart(row: FunnelRow) -> Chart:
    """Six horizontal bars, published to paid, each as long as its share of the published recipients."""
    label_w, track, value_w, row_h, bar_h = 140, 240, 120, 32, 20
    bars = []
    for i, stage in enumerate(STAGES):
        n = row.counts[i]
        share = n / row.published if row.published else 0.0
        bars.append(Bar(x=label_w, y=8 + i * row_h, width=round(track * share, 1), height=bar_h,
                        label=STAGE_TITLES[stage], value=count(n),
                        note=percent(n, row.published) if i else "", tone="paid" if stage == "paid" else ""))
    summary = f"{row.label}: " + ", ".join(f"{count(n)} {STAGE_LABELS[s]}" for s, n in zip(STAGES, row.counts))
    return Chart(width=label_w + track + value_w, height=8 + len(STAGES) * row_h, bars=tuple(bars),
                 summary=summary, track=track)


def buckets_chart(rows: tuple[BucketRow, ...]) -> Chart:
    """Vertical bars of the collection rate per days-past-due bucket, on a scale of 20, 40 or 100 %."""
    left, top, plot_h, slot, bar_w = 44, 24, 180, 92, 52
    scale = next(s for s in RATE_SCALES if max((row.rate or 0.0 for row in rows), default=0.0) <= s)
    bars = []
    for i, row in enumerate(rows):
        rate = row.rate or 0.0
        height = round(plot_h * rate / scale, 1)
        bars.append(Bar(x=left + i * slot + (slot - bar_w) / 2, y=top + plot_h - height, width=bar_w,
                        height=height, label=row.bucket, value=percent(row.paid, row.due),
                        note=f"{count(row.paid)} of {count(row.due)}", tone="" if row.due else "empty"))
    grid = tuple((top + plot_h - plot_h * q / 4, f"{scale * q / 4:.0%}") for q in range(5))
    summary = "Collection rate by days past due: " + ", ".join(
        f"{row.bucket} {percent(row.paid, row.due)}" for row in rows)
    return Chart(width=left + slot * len(rows) + 8, height=top + plot_h + 48, bars=tuple(bars), summary=summary,
                 track=plot_h, grid=grid)


def sources_chart(rows: tuple[SourceRow, ...]) -> Chart:
    """Horizontal bars of the number of paid payments per source, against the largest; notes give the share."""
    label_w, track, value_w, row_h, bar_h = 100, 280, 120, 36, 22
    most = max((row.payments for row in rows), default=0)
    paid = sum(row.payments for row in rows)
    bars = tuple(Bar(x=label_w, y=8 + i * row_h, width=round(track * row.payments / most, 1) if most else 0.0,
                     height=bar_h, label=SOURCE_LABELS.get(row.source, row.source), value=count(row.payments),
                     note=percent(row.payments, paid) if paid else "", tone=row.source)
                 for i, row in enumerate(rows))
    summary = "Paid payments by source: " + ", ".join(f"{row.source} {count(row.payments)}" for row in rows)
    return Chart(width=label_w + track + value_w, height=8 + len(rows) * row_h, bars=bars, summary=summary,
                 track=track)


# --- views ----------------------------------------------------------------------------------------


def page(html: str, status: int = 200) -> Response:
    return Response(html, status, {"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
                    mimetype="text/html")


def campaign_or_404(campaign_id: str) -> Campaign:
    campaign = service().campaign(campaign_id)
    if campaign is None:
        abort(404)
    return campaign


def common() -> dict[str, Any]:
    return {"now": datetime.now(UTC).strftime("%d %b %Y, %H:%M UTC"), "count": count, "percent": percent,
            "money": money, "moneys": moneys, "stylesheet": url_for("reports.stylesheet", v=_stylesheet()[1]),
            "signout": _endpoint_url("auth.signout")}


def _endpoint_url(endpoint: str) -> str | None:
    try:
        return url_for(endpoint)
    except BuildError:  # an app made without it: leave the button out
        return None


@blueprint.get("/")
@admin_required
def index() -> Response:
    """Every campaign the service knows, with how many recipients each has by status."""
    campaigns = []
    for campaign in service().campaigns:
        try:
            counts: dict[str, int] | None = service().ledger(campaign).counts(campaign.id)
        except LedgerError:
            counts = None
        campaigns.append({"campaign": campaign, "counts": counts})
    return page(render_template("reports/index.html", campaigns=campaigns, **common()))


@blueprint.get("/<campaign_id>")
@admin_required
def show(campaign_id: str) -> Response:
    """One campaign's report."""
    campaign = campaign_or_404(campaign_id)
    try:
        report = campaign_report(service().ledger(campaign), campaign.id)
    except LedgerError as exc:
        return page(render_template("reports/error.html", campaign=campaign, message=str(exc), **common()), 503)
    return page(render_template(
        "reports/campaign.html", campaign=campaign, report=report, stages=STAGES, stage_titles=STAGE_TITLES,
        source_titles=SOURCE_TITLES, funnels=[(row, funnel_chart(row)) for row in report.funnel],
        buckets=buckets_chart(report.buckets), sources=sources_chart(report.sources),
        flagged=[row for row in report.reconciliation if row.flagged][:50], **common()))


@blueprint.get("/<campaign_id>/reconciliation.csv")
@admin_required
def reconciliation(campaign_id: str) -> Response:
    campaign = campaign_or_404(campaign_id)
    report: Report = campaign_report(service().ledger(campaign), campaign.id)
    name = f"{campaign.id}-reconciliation-{datetime.now(UTC):%Y%m%d}.csv"
    return Response(reconciliation_csv(report.reconciliation), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@lru_cache(maxsize=1)
def _stylesheet() -> tuple[bytes, str]:
    with blueprint.open_resource(STYLESHEET) as f:
        css = f.read()
    return css, sha256(css).hexdigest()[:12]


@blueprint.get("/static/reports.css")
def stylesheet() -> Response:
    """The pages' stylesheet: not secret, so it needs no token; versioned by its hash in the page's link."""
    css, digest = _stylesheet()
    cache = "public, max-age=31536000, immutable" if request.args.get("v") == digest else "no-cache"
    return Response(css, mimetype="text/css", headers={"Cache-Control": cache, "ETag": f'"{digest}"'})
