"""``billcast demo``: the sample campaign end to end into a folder (``./var``), then a few links to open.

It writes the packaged sample campaign (``examples/campaign.toml``) into that
folder as ``campaign.toml``, its paths pointing at the packaged records and
storyboards and its store, ledger and outputs inside the folder, and runs it
exactly as ``billcast run`` would, except that when ``BILLCAST_LINK_SECRET`` is
unset it makes a link secret once and keeps it in ``link_secret`` there, so
every demo run gives the same links. Works from any folder with nothing but the
installed package.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from billcast.renderer import packaged

from billcast.jobs.campaign import Campaign, load_campaign
from billcast.jobs.run import run_campaign

from .settings import Settings, campaign_link_secret

DEFAULT_CAMPAIGN = packaged("examples") / "campaign.toml"
DEMO_CAMPAIGN = "campaign.toml"  # what the demo writes into its folder, and what `billcast serve` looks for
_PATH_KEY = re.compile(r'^(input|store|ledger|out|cache) = "([^"]*)"$', re.MULTILINE)


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


def demo_campaign(folder: Path) -> str:
    """The sample campaign's text with every path made absolute: records and storyboards packaged,
    the store, ledger, outputs and cache inside ``folder``."""
    folder = folder.absolute()
    examples = packaged("examples")

    def absolute(match: re.Match[str]) -> str:
        key, value = match.groups()
        scheme, _, path = value.rpartition("//") if key in ("store", "ledger") else ("", "", value)
        if path.startswith("../var/"):
            path = str(folder / path.removeprefix("../var/"))
        elif not Path(path).is_absolute():
            path = str(examples / path)
        return f"{key} = {json.dumps(f'{scheme}//{path}' if scheme else path)}"

    text = _PATH_KEY.sub(absolute, DEFAULT_CAMPAIGN.read_text(encoding="utf-8"))
    return text.replace('"../storyboards/', f'"{packaged("storyboards")}/')


def run_demo(folder: Path, settings: Settings, environ: Mapping[str, str], *, campaign: Path | None = None,
             workers: int | None = None) -> int:
    """Run the sample campaign (or ``campaign``) with its outputs in ``folder``; print links to open."""
    folder.mkdir(parents=True, exist_ok=True)
    if campaign is None:
        campaign_path = folder / DEMO_CAMPAIGN
        campaign_path.write_text(demo_campaign(folder), encoding="utf-8")
    else:
        campaign_path = campaign
    serve = "billcast serve" + ("" if folder.absolute() == Path("var").absolute() else f" {campaign_path}")
    loaded = load_campaign(campaign_path)
    secret = campaign_link_secret(settings, loaded, environ, keep=folder / "link_secret")
    return _run(loaded, secret, workers, serve, settings.segment_cache_dir())


def _run(campaign: Campaign, secret: bytes, workers: int | None, serve: str, cache: Path | None) -> int:
    workers = workers or campaign.workers or min(os.cpu_count() or 1, 4)
    print(f"Running the sample campaign {campaign.id} ({campaign.input.name}) with {workers} workers ...")
    started = time.monotonic()
    counts = run_campaign(campaign, secret=secret, workers=workers, show_progress=True, cache_dir=cache)
    print(f"\n{counts.published} published, {counts.unchanged} unchanged since the last run, {counts.refused} "
          f"refused, {counts.failed} failed, in {time.monotonic() - started:.0f} s.")
    with (campaign.out / "manifest.csv").open(encoding="utf-8", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["link"]]
    shown: dict[str, dict] = {}
    for row in rows:
        shown.setdefault(f"{row['storyboard']}{'/' + row['variant'] if row['variant'] else ''}", row)
    store = _store_folder(campaign.store)
    print(f"\nA few recipients (serve them with `{serve}`, then open a link; or open the file):")
    for name, row in sorted(shown.items()):
        token = row["link"].rstrip("/").rsplit("/", 1)[-1]
        page = store / "r" / token / "index.html" if store else row["link"]
        print(f"  {row['customer_id']:<10} {name:<18} {row['link']}\n{'':<31}{page}")
    print(f"\nManifest (links, posters, thumbnails, QR codes for mail merge): {campaign.out / 'manifest.csv'}\n"
          f"Email snippets and QR codes per recipient: {campaign.out / 'recipients'}/<customer_id>/\n"
          f"Refused records: {campaign.out / 'errors.csv'}\n"
          f"Serve the pages and take demo payments: {serve}  (then open a link above)")
    return counts.exit_code
