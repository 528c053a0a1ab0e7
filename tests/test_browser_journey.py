"""The debtor's whole journey in a real browser (Debian's headless Chromium driven by Playwright).

A tiny campaign (160x90) is run for real into a folder store and a SQLite
ledger, and the real service (``billcast serve``'s app: pages, pay with the demo
provider, opt-out, disputes) answers at the campaign's address. Then a debtor opts
out from their page, another disputes the amount, a third pays in installments
with a card that fails and then a new one while ``billcast collect`` runs on each
due date; the next campaigns and the report are checked against what they did.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from billcast.cli import main
from billcast.demo import sample_rules
from billcast.jobs.campaign import load_campaign
from billcast.jobs.ledger import Ledger
from billcast.jobs.links import recipient_token
from billcast.service import create_app

from conftest import ROOT
from test_campaign_run import plain
from test_events import settings_for

pytestmark = pytest.mark.slow
SECRET = "j" * 40
CAMPAIGN = "journey-2026-11"
OPTS_OUT, DISPUTES, PAYS_IN_PARTS, BYSTANDER = "EG-000790", "DE-000456", "IT-000124", "US-001234"
PHONE = {"width": 390, "height": 844}
AXE = Path(os.environ.get("BILLCAST_AXE", ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))
SHOTS = Path(os.environ.get("BILLCAST_SCREENSHOTS", "")) if os.environ.get("BILLCAST_SCREENSHOTS") else None


def write_campaign(folder: Path, campaign_id: str, url: str, customers: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.jsonl").write_text("\n".join(json.dumps(plain(c)) for c in customers) + "\n",
                                            encoding="utf-8")
    (folder / "campaign.toml").write_text(f"""\
id = "{campaign_id}"
input = "customers.jsonl"
store = "file://../store"
public_url = "{url}"
link_secret_env = "BILLCAST_TEST_SECRET"
ledger = "sqlite:///../ledger.db"
out = "out"
cache = "../cache"
size = [160, 90]
{sample_rules()}""", encoding="utf-8")
    return folder / "campaign.toml"


def manifest(path: Path) -> dict[str, dict[str, str]]:
    with (path.parent / "out" / "manifest.csv").open(encoding="utf-8", newline="") as f:
        return {row["customer_id"]: row for row in csv.DictReader(f)}


def token(customer_id: str, campaign_id: str = CAMPAIGN) -> str:
    return recipient_token(SECRET.encode(), campaign_id, customer_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """The first campaign run and served; yields (base URL, campaign file, folder)."""
    root = tmp_path_factory.mktemp("journey")
    apps: dict = {}
    server = make_server("127.0.0.1", 0, lambda env, start: apps["service"](env, start), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    os.environ["BILLCAST_TEST_SECRET"] = SECRET
    path = write_campaign(root / "first", CAMPAIGN, url, (OPTS_OUT, DISPUTES, PAYS_IN_PARTS, BYSTANDER))
    assert main(["run", str(path), "--quiet", "--workers", "1"]) == 0
    apps["service"] = create_app(settings_for(load_campaign(path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url, path, root
    server.shutdown()
    server.server_close()
    apps["service"].extensions["billcast"].close()


@pytest.fixture
def phone(browser):
    contexts = []

    def open_(url: str, **options):
        context = browser.new_context(viewport=PHONE, **options)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda exc: page.problems.append(str(exc)))
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


def shoot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_violations(page) -> list:
    page.add_script_tag(path=AXE)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def next_campaign(root: Path, url: str, campaign_id: str, customers: tuple[str, ...]) -> dict[str, dict[str, str]]:
    path = write_campaign(root / campaign_id, campaign_id, url, customers)
    assert main(["run", str(path), "--quiet", "--workers", "1"]) == 0
    return manifest(path)


def test_opting_out_from_the_page_is_honoured_by_the_next_campaign(world, phone) -> None:
    url, path, root = world
    page = phone(f"{url}/r/{token(OPTS_OUT)}/")
    page.get_by_role("link", name="إيقاف تلقي هذه الرسائل").click()  # the footer's opt-out link
    page.wait_for_url(f"**/r/{token(OPTS_OUT)}/optout")
    assert page.locator("html").get_attribute("dir") == "rtl"
    shoot(page, "optout_ar")
    page.get_by_role("button", name="إيقاف هذه الرسائل").click()
    page.get_by_role("heading", name="لن تتلقى هذه الرسائل بعد الآن").wait_for()
    shoot(page, "optout_done_ar")
    assert page.problems == []
    with Ledger(load_campaign(path).ledger) as ledger:
        [entry] = [s for s in ledger.suppressions() if s.customer_id == OPTS_OUT]
    assert (entry.channel, entry.reason, entry.source, entry.campaign_id) == ("email", "optout", "page", CAMPAIGN)

    rows = next_campaign(root, url, "journey-next-optout", (OPTS_OUT, BYSTANDER))
    assert (rows[OPTS_OUT]["status"], rows[OPTS_OUT]["reason"], rows[OPTS_OUT]["link"]) == ("suppressed", "optout", "")
    assert rows[BYSTANDER]["status"] == "published"

    page = phone(f"{url}/r/{token(OPTS_OUT)}/")  # the page stays, and so does the way to pay
    page.get_by_role("link", name="ادفع المبلغ كاملًا").first.click()
    page.wait_for_url("**/demo/checkout/cs_demo_*")


def test_the_opt_out_and_dispute_pages_pass_axe_and_work_without_javascript(world, phone) -> None:
    url, _, _ = world
    for path in (f"/r/{token(BYSTANDER)}/optout", f"/r/{token(DISPUTES)}/dispute"):
        page = phone(f"{url}{path}", bypass_csp=True)  # to let axe in; the pages run no script of their own
        assert no_violations(page) == []
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page = phone(f"{url}/r/{token(BYSTANDER)}/optout", java_script_enabled=False)
    assert page.get_by_role("button", name="Stop these messages").is_visible()


def test_disputing_from_the_page_stops_collection_for_that_customer(world, phone) -> None:
    url, path, root = world
    page = phone(f"{url}/r/{token(DISPUTES)}/")
    page.get_by_role("link", name="Sind Sie mit diesem Betrag nicht einverstanden? Widersprechen Sie").click()
    page.wait_for_url(f"**/r/{token(DISPUTES)}/dispute")
    page.get_by_role("button", name="Widerspruch senden").click()  # no reason chosen: the form says so
    page.get_by_text("Bitte wählen Sie einen Grund.").wait_for()
    page.get_by_label("Ich habe bereits bezahlt").check()
    page.get_by_label("Möchten Sie noch etwas ergänzen? (optional)").fill("Überweisung am 3. Oktober.")
    shoot(page, "dispute_de")
    page.get_by_role("button", name="Widerspruch senden").click()
    page.get_by_role("heading", name="Wir haben Ihren Widerspruch erhalten").wait_for()
    with Ledger(load_campaign(path).ledger) as ledger:
        [dispute] = [d for d in ledger.disputes() if d.customer_id == DISPUTES]
    assert (dispute.reason, dispute.details) == ("already_paid", "Überweisung am 3. Oktober.")

    rows = next_campaign(root, url, "journey-next-dispute", (DISPUTES, BYSTANDER))
    assert (rows[DISPUTES]["status"], rows[DISPUTES]["reason"]) == ("suppressed", "dispute")
    assert rows[BYSTANDER]["status"] == "published"
    page = phone(f"{url}/r/{token(DISPUTES)}/")
    assert page.get_by_role("link", name="Gesamtbetrag zahlen").is_visible()  # the pay buttons stay


def collect(path: Path, on: str) -> None:
    assert main(["collect", str(path), "--date", on]) == 0


def test_a_plan_is_collected_to_the_end_through_a_failing_card_and_a_new_one(world, phone, tmp_path) -> None:
    url, path, _ = world
    page = phone(f"{url}/r/{token(PAYS_IN_PARTS)}/")
    page.get_by_role("link", name="Paga in 3 rate").first.click()
    page.wait_for_url("**/demo/checkout/cs_demo_*")
    page.get_by_label("A card that will be declined later").check()
    page.get_by_role("button", name="Pay €61.72").click()
    page.wait_for_url(f"**/r/{token(PAYS_IN_PARTS)}/?paid=1")
    assert page.get_by_text("1 di 3 rate pagate").is_visible()

    collect(path, "2027-01-05")  # the card declines
    page.reload()
    assert page.get_by_text("Non siamo riusciti ad addebitare").is_visible()
    shoot(page, "plan_needs_card_it")
    assert no_violations(phone(f"{url}/r/{token(PAYS_IN_PARTS)}/", bypass_csp=True)) == []  # the plan's card too
    page.get_by_role("link", name="Aggiorna la carta").click()
    page.wait_for_url("**/demo/checkout/cs_demo_*")
    page.get_by_label("A card that works").check()
    page.get_by_role("button", name="Save card").click()
    page.wait_for_url(f"**/r/{token(PAYS_IN_PARTS)}/?paid=1")
    assert page.get_by_text("1 di 3 rate pagate").is_visible()

    collect(path, "2027-01-05")  # charged again, to the new card
    page.reload()
    assert page.get_by_text("2 di 3 rate pagate").is_visible()
    shoot(page, "plan_active_it")
    collect(path, "2027-02-05")
    page.reload()
    assert page.get_by_role("heading", name="Pagato – grazie").is_visible()
    assert page.locator("a[href*='/pay/']").count() == 0
    assert page.problems == []

    paid_csv = tmp_path / "paid.csv"
    assert main(["report", str(path), "--payments-csv", str(paid_csv)]) == 0
    with paid_csv.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["token"] == token(PAYS_IN_PARTS)]
    assert sorted((r["installment"], r["amount"]) for r in rows) == [("1", "61.72"), ("2", "61.72"), ("3", "61.71")]
