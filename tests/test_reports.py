"""Campaign reports: the numbers (``jobs.report``), ``billcast report``, and the admin pages (``/reports``).

One ledger is filled through its API: nine recipients over four storyboards and
variants (one never published, one expired, one in credit), their events, and
paid, flagged, failed, pending and expired payments; every figure below is
counted by hand from that list.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest

from billcast.jobs.campaign import Campaign
from billcast.jobs.ledger import Ledger, LedgerError
from billcast.jobs.report import (CSV_COLUMNS, BucketRow, FunnelRow, SourceRow, build_report, campaign_report,
                         dpd_bucket, format_report, major_units, reconciliation_csv, report_command)
from billcast.service.reports import CSP

from conftest import BACKENDS, empty_ledger
from test_events import NOW, publish, service_app, settings_for, write_campaign

CAMPAIGN = "rep-2026-11"
ADMIN = "admin-test-token-0123456789"


def tok(n: int) -> str:
    return f"RepT0ken_{n:02d}_abcdefghij"


# customer, storyboard, variant, amount due, currency, days past due
RECIPIENTS = [
    ("C01", "firm_reminder", "", "185.15", "EUR", 45),
    ("C02", "firm_reminder", "", "90.00", "EUR", 95),
    ("C03", "soft_reminder", "a", "40.00", "EUR", 10),
    ("C04", "soft_reminder", "a", "60.00", "EUR", 20),
    ("C05", "soft_reminder_b", "b", "55.50", "EUR", 25),
    ("C06", "bill_explainer", "", "134.40", "USD", None),
    ("C07", "bill_explainer", "", "-12.00", "USD", None),   # in credit: nothing to pay
    ("C09", "soft_reminder_b", "b", "30.00", "EUR", 75),    # expired since, still published once
]
EVENTS = {  # customer -> events
    "C01": [("view", None), ("view", None), ("play", None), ("progress", 25), ("progress", 50), ("cta_click", None)],
    "C02": [("view", None)],
    "C03": [("view", None), ("play", None), ("progress", 25), ("progress", 50), ("progress", 75),
            ("progress", 100), ("pay_click", None)],
    "C04": [("view", None), ("play", None), ("progress", 25)],
    "C05": [("view", None), ("play", None), ("progress", 50), ("cta_click", None)],
    "C06": [("view", None), ("pay_click", None)],
    "C07": [("view", None)],
    "C08": [("view", None), ("play", None)],                # never published: not counted
    "C09": [("view", None), ("play", None)],
    "stranger": [("view", None), ("pay_click", None)],      # a token of no recipient
}
# customer, provider_ref, amount (minor units), currency, option, source, status, flag reason
PAYMENTS = [
    ("C03", "cs_1", 4000, "EUR", "full", "qr", "failed", None),
    ("C01", "cs_2", 18515, "EUR", "full", "video", "paid", None),
    ("C03", "cs_3", 3500, "EUR", "full", "site", "paid", "amount 35.00 EUR is not the 40.00 EUR due"),
    ("C04", "cs_4", 6000, "EUR", "full", "email", "pending", None),
    ("C05", "cs_5", 5550, "EUR", "full", "site", "failed", None),
    ("C06", "cs_6", 13440, "USD", "full", "qr", "paid", None),
    ("C02", "cs_7", 9000, "EUR", "full", "site", "expired", None),
    ("C09", "cs_8", 1000, "EUR", "plan", "email", "paid", None),
]


def token_of(customer: str) -> str:
    return tok(0) if customer == "stranger" else tok(int(customer[1:]))


def fill(ledger: Ledger, campaign_id: str = CAMPAIGN) -> None:
    """The ledger every test here reads, written through the ledger's own API."""
    ledger.ensure_campaign(campaign_id, link_days=60)
    for customer, storyboard, variant, due, currency, days in RECIPIENTS:
        publish(ledger, campaign_id, customer, token_of(customer), storyboard=storyboard, variant=variant,
                amount_due=due, currency=currency, days_past_due=days)
    ledger.mark_expired(campaign_id, ["C09"])
    ledger.reserve(campaign_id=campaign_id, customer_id="C08", token=tok(8), storyboard="bill_explainer",
                   variant="", amount_due=Decimal("70.00"), currency="EUR")
    for customer, events in EVENTS.items():
        for kind, value in events:
            ledger.add_event(campaign_id=campaign_id, token=token_of(customer), kind=kind, value=value, at=NOW)
    for customer, ref, amount, currency, option, source, status, flag in PAYMENTS:
        ledger.upsert_payment(campaign_id=campaign_id, token=token_of(customer), provider="stripe", provider_ref=ref,
                              amount=amount, currency=currency, option=option, source=source, status=status,
                              flag_reason=flag)


@pytest.fixture(scope="module", params=BACKENDS)
def campaign(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    """The campaign file, its ledger (SQLite, then PostgreSQL) filled once for the module."""
    folder = tmp_path_factory.mktemp("reports")
    with empty_ledger(request, request.param, folder) as url:
        campaign = write_campaign(folder, CAMPAIGN, ledger=url)
        with Ledger(campaign.ledger) as ledger:
            fill(ledger)
        yield campaign


@pytest.fixture(scope="module")
def report(campaign: Campaign):
    with Ledger(campaign.ledger) as ledger:
        return campaign_report(ledger, campaign.id)


# --- the numbers ---------------------------------------------------------------------------------

EUR, USD = "EUR", "USD"


def test_funnel_per_storyboard_and_variant_counts_distinct_recipients(report) -> None:
    assert report.funnel == (
        FunnelRow("bill_explainer", "", 2, 2, 0, 0, 1, 1, ((USD, Decimal("134.40")),)),
        FunnelRow("firm_reminder", "", 2, 2, 1, 1, 1, 1, ((EUR, Decimal("185.15")),)),
        FunnelRow("soft_reminder", "a", 2, 2, 2, 1, 1, 1, ((EUR, Decimal("35.00")),)),
        FunnelRow("soft_reminder_b", "b", 2, 2, 2, 1, 1, 1, ((EUR, Decimal("10.00")),)),
    )
    assert report.total == FunnelRow("all", "", 8, 8, 5, 3, 4, 4, ((EUR, Decimal("230.15")), (USD, Decimal("134.40"))))


def test_collection_rate_by_days_past_due(report) -> None:
    assert report.buckets == (  # the one in credit (C07) has nothing to pay: not counted
        BucketRow("no arrears", 1, 1, ((USD, Decimal("134.40")),)),
        BucketRow("1-30", 3, 1, ((EUR, Decimal("35.00")),)),
        BucketRow("31-60", 1, 1, ((EUR, Decimal("185.15")),)),
        BucketRow("61-90", 1, 1, ((EUR, Decimal("10.00")),)),
        BucketRow("91+", 1, 0, ()),
    )
    assert [row.rate for row in report.buckets] == [1.0, 1 / 3, 1.0, 1.0, 0.0]


def test_payments_by_source_count_only_paid_ones(report) -> None:
    assert report.sources == (
        SourceRow("video", 1, ((EUR, Decimal("185.15")),)),
        SourceRow("site", 1, ((EUR, Decimal("35.00")),)),
        SourceRow("qr", 1, ((USD, Decimal("134.40")),)),
        SourceRow("email", 1, ((EUR, Decimal("10.00")),)),
    )


def test_reconciliation_rows_are_the_paid_payments_with_flags(report) -> None:
    rows = [(r.token, r.customer_id, r.amount, r.currency, r.option, r.source, r.flagged, r.flag_reason)
            for r in report.reconciliation]
    assert rows == [
        (tok(1), "C01", Decimal("185.15"), EUR, "full", "video", False, None),
        (tok(3), "C03", Decimal("35.00"), EUR, "full", "site", True, "amount 35.00 EUR is not the 40.00 EUR due"),
        (tok(6), "C06", Decimal("134.40"), USD, "full", "qr", False, None),
        (tok(9), "C09", Decimal("10.00"), EUR, "plan", "email", False, None),
    ]
    ids = [r.payment_id for r in report.reconciliation]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(r.paid_at.tzinfo is not None for r in report.reconciliation)
    assert report.flagged == 1


@dataclass(frozen=True)
class Person:
    """What the report reads of a ledger ``Recipient``."""

    token: str
    customer_id: str
    storyboard: str
    variant: str
    amount_due: Decimal
    days_past_due: int | None
    published_at: datetime | None = NOW


def test_every_bucket_boundary_and_who_counts_in_the_rate() -> None:
    people = [Person(tok(i), f"C{i}", "s", "", Decimal(due), days)
              for i, (due, days) in enumerate([("10", None), ("10", 0), ("10", 1), ("10", 30), ("10", 31), ("10", 60),
                                               ("10", 61), ("10", 90), ("10", 91), ("10", 400), ("0", 200)])]
    paid = [{"id": i, "token": tok(i), "amount": 1000, "currency": "EUR", "option": "full", "source": "site",
             "status": "paid", "flagged": False, "flag_reason": None, "updated_at": NOW} for i in (0, 3, 4, 9, 10)]
    report = build_report("x", people, [], paid)
    assert [(b.bucket, b.due, b.paid) for b in report.buckets] == [
        ("no arrears", 2, 1), ("1-30", 2, 1), ("31-60", 2, 1), ("61-90", 2, 0), ("91+", 2, 1)]
    assert report.total.paid == 5  # the one in credit paid too; it counts in the funnel, not in the rate


def test_days_past_due_buckets_and_money_in_major_units() -> None:
    assert [dpd_bucket(d) for d in (None, -3, 0, 1, 30, 31, 60, 61, 90, 91, 10_000)] == [
        "no arrears", "no arrears", "no arrears", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "91+", "91+"]
    assert major_units(18515, "EUR") == Decimal("185.15") and str(major_units(500, "EUR")) == "5.00"
    assert major_units(1500, "JPY") == Decimal("1500") and str(major_units(1500, "JPY")) == "1500"
    assert str(major_units(12345, "KWD")) == "12.345"


def test_an_empty_campaign_reports_zeros() -> None:
    report = build_report("empty", [], [], [])
    assert report.funnel == () and report.total.counts == (0,) * 6 and report.reconciliation == ()
    assert "Campaign empty: 0 published, 0 paid (-)" in format_report(report)


# --- the CSV and the command ---------------------------------------------------------------------

def test_reconciliation_csv(report) -> None:
    text = reconciliation_csv(report.reconciliation)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[:7] + row[8:] for row in rows[1:]] == [
        [str(report.reconciliation[0].payment_id), tok(1), "C01", "185.15", "EUR", "full", "video", "no", "", ""],
        [str(report.reconciliation[1].payment_id), tok(3), "C03", "35.00", "EUR", "full", "site", "yes",
         "amount 35.00 EUR is not the 40.00 EUR due", ""],
        [str(report.reconciliation[2].payment_id), tok(6), "C06", "134.40", "USD", "full", "qr", "no", "", ""],
        [str(report.reconciliation[3].payment_id), tok(9), "C09", "10.00", "EUR", "plan", "email", "no", "", ""],
    ]
    for row, payment in zip(rows[1:], report.reconciliation):
        assert row[7] == payment.paid_at.isoformat(timespec="seconds") and row[7].endswith("+00:00")


def test_csv_cells_a_spreadsheet_would_run_are_defused() -> None:
    row = {"id": 1, "token": tok(1), "amount": 100, "currency": "EUR", "option": "full", "source": "site",
           "status": "paid", "flagged": True, "flag_reason": "=HYPERLINK(\"http://x\")", "updated_at": NOW}
    text = reconciliation_csv(build_report("x", [], [], [row]).reconciliation)
    assert "'=HYPERLINK" in text


def test_report_command_prints_aligned_tables_and_writes_the_csv(campaign, report, tmp_path) -> None:
    out = io.StringIO()
    target = tmp_path / "exports" / "paid.csv"
    assert report_command(campaign.path, target, out) == 0
    text = out.getvalue()
    head, funnel, _ = text.split("\n\n", 2)
    assert head == f"Campaign {CAMPAIGN}: 8 published, 4 paid (50.0%), collected EUR 230.15, USD 134.40"
    assert funnel + "\n" == """\
Funnel by storyboard and variant (distinct recipients)
storyboard       variant  published  viewed  played  watched half  clicked  paid  paid %  collected
---------------  -------  ---------  ------  ------  ------------  -------  ----  ------  ----------------------
bill_explainer                    2       2       0             0        1     1   50.0%  USD 134.40
firm_reminder                     2       2       1             1        1     1   50.0%  EUR 185.15
soft_reminder    a                2       2       2             1        1     1   50.0%  EUR 35.00
soft_reminder_b  b                2       2       2             1        1     1   50.0%  EUR 10.00
all                               8       8       5             3        4     4   50.0%  EUR 230.15, USD 134.40
"""
    assert """
days past due  to pay  paid    rate  collected
-------------  ------  ----  ------  ----------
no arrears          1     1  100.0%  USD 134.40
1-30                3     1   33.3%  EUR 35.00
31-60               1     1  100.0%  EUR 185.15
61-90               1     1  100.0%  EUR 10.00
91+                 1     0    0.0%  -
""" in text
    assert """
source  payments  amount
------  --------  ----------
video          1  EUR 185.15
site           1  EUR 35.00
qr             1  USD 134.40
email          1  EUR 10.00
""" in text
    assert f"""Paid payments: 4, flagged for review: 1

Not contacted: 0 suppressed, 0 deferred

Open disputes: 0

Payment plans: 0 active, 0 needs card, 0 broken, 0 completed
Installments: 0 paid, 0 scheduled, 0 charging, 0 submitted, 0 failed; collected -
Reconciliation: 4 paid payments written to {target}
""" in text
    assert target.read_bytes().decode("utf-8") == reconciliation_csv(report.reconciliation)
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_report_command_without_a_ledger_says_so_and_makes_none(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "fresh", "fresh-1")
    with pytest.raises(LedgerError, match=r"no ledger at .*ledger\.db; run `billcast run`") as caught:
        report_command(campaign.path, None, io.StringIO())
    assert caught.value.exit_code == 8
    assert not (tmp_path / "fresh" / "ledger.db").exists()


# --- the pages -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(campaign):
    other = write_campaign(campaign.folder.parent / "other", "other-2026-10")
    app = service_app(settings_for(campaign, other, admin_token=ADMIN))
    yield app.test_client()
    app.extensions["billcast"].close()


BEARER = {"Authorization": f"Bearer {ADMIN}"}


@pytest.mark.parametrize("path", ["/reports/", f"/reports/{CAMPAIGN}", f"/reports/{CAMPAIGN}/reconciliation.csv"])
def test_reports_need_the_admin_token(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    browser = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 302 and browser.headers["Location"].startswith("/signin?next=")
    assert client.get(path, headers=BEARER).status_code == 200


def test_the_report_page(client) -> None:
    response = client.get(f"/reports/{CAMPAIGN}", headers=BEARER)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP and "script-src" not in CSP
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html and "http://" not in html.split("</head>")[0]
    assert html.count('<svg class="chart"') == 4 + 2  # a funnel per storyboard and variant, DPD, sources
    assert html.count("<table") == 4  # the same numbers as tables (funnel, DPD, sources, flagged payments)
    for text in ("soft_reminder_b", "variant b", "€230.15", "$134.40", "€185.15", "QR code (paper bill)",
                 "amount 35.00 EUR is not the 40.00 EUR due", f'href="/reports/{CAMPAIGN}/reconciliation.csv"'):
        assert text in html
    assert "<title" in html.split('<svg class="chart"')[1]  # every chart says what it shows


def test_the_stylesheet_is_served_with_the_page(client) -> None:
    html = client.get(f"/reports/{CAMPAIGN}", headers=BEARER).get_data(as_text=True)
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    css = client.get(href)
    assert css.status_code == 200 and css.mimetype == "text/css" and b"#08303F" in css.data
    assert "immutable" in css.headers["Cache-Control"]


def test_the_campaign_list(client) -> None:
    html = client.get("/reports/", headers=BEARER).get_data(as_text=True)
    assert f'href="/reports/{CAMPAIGN}"' in html and 'href="/reports/other-2026-10"' in html


def test_an_unknown_campaign_is_404(client) -> None:
    assert client.get("/reports/no-such-campaign", headers=BEARER).status_code == 404
    assert client.get("/reports/no-such-campaign/reconciliation.csv", headers=BEARER).status_code == 404


def test_the_csv_download(client, report) -> None:
    response = client.get(f"/reports/{CAMPAIGN}/reconciliation.csv", headers=BEARER)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert re.fullmatch(rf'attachment; filename="{CAMPAIGN}-reconciliation-\d{{8}}\.csv"',
                        response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data(as_text=True) == reconciliation_csv(report.reconciliation)


def test_signing_in_once_opens_the_reports(campaign) -> None:
    app = service_app(settings_for(campaign, admin_token=ADMIN))
    browser = app.test_client()
    response = browser.post("/signin", data={"token": ADMIN, "next": f"/reports/{CAMPAIGN}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/reports/{CAMPAIGN}"
    page = browser.get(f"/reports/{CAMPAIGN}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"Funnel by storyboard and variant" in page.data
    app.extensions["billcast"].close()


def test_a_ledger_that_cannot_be_read_is_a_503_naming_it(client, monkeypatch) -> None:
    def broken(ledger, campaign_id):
        raise LedgerError("OperationalError: unable to open database file", where="sqlite:///x.db", field="events")

    monkeypatch.setattr("billcast.service.reports.campaign_report", broken)
    response = client.get(f"/reports/{CAMPAIGN}", headers=BEARER)
    assert response.status_code == 503 and response.headers["Content-Security-Policy"] == CSP
    assert "sqlite:///x.db: events: OperationalError: unable to open database file" in response.get_data(as_text=True)
