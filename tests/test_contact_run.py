"""Campaigns that honour the debtor's choices: opted-out and disputing customers suppressed before rendering,
the weekly cap across campaigns of one ledger, send windows per time zone, RFC 8058 values in the manifest.

Two tiny campaigns (160x90) share one ledger and one folder store, as a creditor's monthly campaigns do.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billcast.cli import main
from billcast.demo import sample_rules
from billcast.jobs.campaign import load_campaign
from billcast.jobs.ledger import Ledger
from billcast.jobs.links import recipient_token
from billcast.jobs.report import campaign_report
from billcast.jobs.store import open_store

from test_campaign_run import plain

pytestmark = pytest.mark.slow
SECRET = "c" * 40
PAY = "https://pay.lumen.test"
RECORDS = ("IT-000124", "DE-000456", "EG-000790", "US-001234")


def write(folder: Path, campaign_id: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = [plain(cid) | ({"timezone": "America/New_York"} if cid == "US-001234" else {}) for cid in RECORDS]
    (folder / "customers.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    (folder / "campaign.toml").write_text(f"""\
id = "{campaign_id}"
input = "customers.jsonl"
store = "file://../store"
public_url = "https://bills.lumen.test"
pay_url = "{PAY}"
link_secret_env = "BILLCAST_TEST_SECRET"
ledger = "sqlite:///../ledger.db"
out = "out"
cache = "../cache"
size = [160, 90]
send_window = "08:00-21:00"
timezone = "Europe/Rome"
{extra}
{sample_rules()}""", encoding="utf-8")
    return folder / "campaign.toml"


def manifest(path: Path) -> dict[str, dict[str, str]]:
    with (path.parent / "out" / "manifest.csv").open(encoding="utf-8", newline="") as f:
        return {row["customer_id"]: row for row in csv.DictReader(f)}


def token(campaign_id: str, customer_id: str) -> str:
    return recipient_token(SECRET.encode(), campaign_id, customer_id)


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLCAST_TEST_SECRET", SECRET)


def test_opt_outs_disputes_windows_and_the_cap_across_two_campaigns(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    first = write(tmp_path / "first", "bills-2026-11")
    ledger = Ledger(load_campaign(first).ledger)
    ledger.ensure_campaign("bills-2026-11", link_days=60)
    ledger.suppress(customer_id="DE-000456", channel="email", reason="optout", source="page",
                    campaign_id="bills-2026-11")
    ledger.open_dispute(campaign_id="bills-2026-11", customer_id="EG-000790", token=token("bills-2026-11", "EG-000790"),
                        reason="wrong_amount", details=None)
    started = datetime.now(UTC)
    assert main(["run", str(first), "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 published, 0 unchanged, 0 refused, 0 failed, 2 suppressed, 0 deferred" in out
    assert "  suppressed: 1 for firm_reminder" in out or "  suppressed: 1 for soft_reminder" in out
    rows = manifest(first)
    assert {cid: (row["status"], row["reason"]) for cid, row in rows.items()} == {
        "IT-000124": ("published", ""), "DE-000456": ("suppressed", "optout"), "EG-000790": ("suppressed", "dispute"),
        "US-001234": ("published", "")}
    store = open_store(f"file://{tmp_path / 'store'}")
    for cid in ("DE-000456", "EG-000790"):
        assert rows[cid]["link"] == "" and rows[cid]["storyboard"] != ""  # counted where the rules put them
        assert list(store.list(f"r/{token('bills-2026-11', cid)}/")) == []  # nothing rendered or published
    it = rows["IT-000124"]
    it_token = token("bills-2026-11", "IT-000124")
    assert it["list_unsubscribe"] == f"<{PAY}/r/{it_token}/optout>"
    assert it["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    email = (first.parent / "out" / "recipients" / "IT-000124" / "email.html").read_text(encoding="utf-8")
    assert f'href="{PAY}/r/{it_token}/optout"' in email
    page = store.get(f"r/{it_token}/index.html").decode()
    assert f'href="{PAY}/r/{it_token}/optout"' in page and f'href="{PAY}/r/{it_token}/dispute"' in page
    for cid, zone in (("IT-000124", "Europe/Rome"), ("US-001234", "America/New_York")):
        after = datetime.fromisoformat(rows[cid]["send_after"].replace("Z", "+00:00"))
        before = datetime.fromisoformat(rows[cid]["send_before"].replace("Z", "+00:00"))
        assert rows[cid]["send_after"].endswith("Z") and started - timedelta(seconds=5) <= after < before
        from zoneinfo import ZoneInfo
        local_after, local_before = after.astimezone(ZoneInfo(zone)), before.astimezone(ZoneInfo(zone))
        assert local_before.strftime("%H:%M") == "21:00"
        assert "08:00" <= local_after.strftime("%H:%M") < "21:00"

    # a second campaign over the same records, capped at one message a week: those just sent wait a week
    second = write(tmp_path / "second", "bills-2026-12", "max_messages_per_7_days = 1")
    assert main(["run", str(second), "--quiet", "--workers", "1"]) == 0
    assert "0 published, 0 unchanged, 0 refused, 0 failed, 2 suppressed, 2 deferred" in capsys.readouterr().out
    rows = manifest(second)
    assert {cid: (row["status"], row["reason"]) for cid, row in rows.items()} == {
        "IT-000124": ("deferred", "max_messages_per_7_days"), "DE-000456": ("suppressed", "optout"),
        "EG-000790": ("suppressed", "dispute"), "US-001234": ("deferred", "max_messages_per_7_days")}
    published = ledger.recipient("bills-2026-11", "IT-000124").published_at
    wait = datetime.fromisoformat(rows["IT-000124"]["send_after"].replace("Z", "+00:00"))
    assert published + timedelta(days=7) <= wait <= published + timedelta(days=8)
    assert rows["IT-000124"]["link"] == "" and ledger.recipient("bills-2026-12", "IT-000124") is None

    # the dispute resolved, the disputing customer is contacted again; the report counts by storyboard
    assert main(["disputes", "resolve", "EG-000790", "--outcome", "corrected", "--ledger",
                 load_campaign(second).ledger]) == 0
    assert main(["run", str(second), "--quiet", "--workers", "1"]) == 0
    assert manifest(second)["EG-000790"]["status"] == "published"
    report = campaign_report(ledger, "bills-2026-12")
    journey = report.journey
    assert (journey.suppressed, journey.deferred) == (1, 2)
    assert dict(journey.reasons) == {"optout": 1, "max_messages_per_7_days": 2}
    assert sum(row.suppressed + row.deferred for row in journey.withheld) == 3
    assert all(row.storyboard for row in journey.withheld)
    assert report.total.published == 1
    ledger.close()
