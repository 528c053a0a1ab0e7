"""``billcast demo``: the sample campaign end to end into ``./var``, then a few links to open.

It runs ``examples/campaign.toml`` exactly as ``billcast run`` would, except that
when ``BILLCAST_LINK_SECRET`` is unset it makes a link secret once and keeps it
in ``var/link_secret``, so every demo run gives the same links.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

from billcast.renderer import packaged

from billcast.jobs.campaign import load_campaign
from billcast.jobs.links import link_secret
from billcast.jobs.run import run_campaign

DEFAULT_CAMPAIGN = packaged("examples") / "campaign.toml"


def sample_rules() -> str:
    """The sample campaign's ``[[rules]]`` tables, storyboards as absolute paths: for campaigns written elsewhere.

    Benchmarks and tests that write a campaign file of their own take the demo's rules
    from here, so there is one place that says which customer gets which storyboard.
    """
    text = DEFAULT_CAMPAIGN.read_text(encoding="utf-8")
    rules = text[text.index("[[rules]]"):]
    return rules.replace('"../storyboards/', f'"{packaged("storyboards")}/')


def _store_folder(store_url: str) -> Path | None:
    return Path(store_url.removeprefix("file://")) if store_url.startswith("file://") else None


def run_demo(campaign_path: Path = DEFAULT_CAMPAIGN, *, workers: int | None = None,
             keep_secret: Path | None = None) -> int:
    campaign = load_campaign(campaign_path)
    keep = keep_secret or Path("var") / "link_secret"
    secret = link_secret(campaign.link_secret_env, environ=os.environ, keep=keep)
    workers = workers or campaign.workers or min(os.cpu_count() or 1, 4)
    print(f"Running the sample campaign {campaign.id} ({campaign.input.name}) with {workers} workers ...")
    started = time.monotonic()
    counts = run_campaign(campaign, secret=secret, workers=workers, show_progress=True)
    print(f"\n{counts.published} published, {counts.unchanged} unchanged since the last run, {counts.refused} "
          f"refused, {counts.failed} failed, in {time.monotonic() - started:.0f} s.")
    with (campaign.out / "manifest.csv").open(encoding="utf-8", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["link"]]
    shown: dict[str, dict] = {}
    for row in rows:
        shown.setdefault(f"{row['storyboard']}{'/' + row['variant'] if row['variant'] else ''}", row)
    store = _store_folder(campaign.store)
    print("\nA few recipients (serve them with `.venv/bin/billcast serve`, then open a link; or open the file):")
    for name, row in sorted(shown.items()):
        token = row["link"].rstrip("/").rsplit("/", 1)[-1]
        page = store / "r" / token / "index.html" if store else row["link"]
        print(f"  {row['customer_id']:<10} {name:<18} {row['link']}\n{'':<31}{page}")
    print(f"\nManifest (links, posters, thumbnails, QR codes for mail merge): {campaign.out / 'manifest.csv'}\n"
          f"Email snippets and QR codes per recipient: {campaign.out / 'recipients'}/<customer_id>/\n"
          f"Refused records: {campaign.out / 'errors.csv'}\n"
          f"Serve the pages and take demo payments: .venv/bin/billcast serve  (then open a link above)")
    return counts.exit_code
