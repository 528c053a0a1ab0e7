"""``billcast demo``: every shipped storyboard, rendered for sample customers in every language."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from renderer import BillcastError, SegmentCache, load_storyboard, plan, render
from renderer.storyboard import default_assets_dir

from .links import random_token, recipient_links
from .record_files import load_records
from .records import Record, amount_due, record_values

ROOT = default_assets_dir().parent
LANGUAGES = ("it", "de", "ar", "en")
DEMO_URL = "http://127.0.0.1:8000"


def _language(record: Record) -> str:
    return (record.locale or "en-US").split("-")[0].lower()


def _fits(purpose: str, record: Record) -> int:
    """How well a customer suits a storyboard's purpose: 2 exactly, 1 acceptably, 0 not at all."""
    debt = record.debt
    if purpose == "bill":
        return 2 if debt is None and record.bill.total > 0 and record.bill.usage else 1
    if debt is None:
        return 0
    late = debt.days_past_due > 30
    return 2 if late == (purpose == "collection") else 1


def pick_customers(records: list[Record], purpose: str) -> dict[str, Record]:
    """The best sample customer for each language."""
    chosen: dict[str, Record] = {}
    for lang in LANGUAGES:
        ranked = sorted((r for r in records if _language(r) == lang and _fits(purpose, r)),
                        key=lambda r: -_fits(purpose, r))
        if ranked:
            chosen[lang] = ranked[0]
    return chosen


def _job(storyboard: str, record: Record, out: str, size: tuple[int, int] | None,
         cache: SegmentCache | None) -> tuple[str, float, str]:
    """One customer: their video in ``out/video``, their page in ``out/site``, both behind one token."""
    from microsite import Disclosure, SiteSettings, build_site, load_catalogs, read_video, write_site

    started = time.monotonic()
    board = load_storyboard(storyboard)
    token = random_token()
    timeline = plan(board, record_values(record), recipient_links(DEMO_URL, DEMO_URL, token), size=size)
    render(timeline, Path(out) / "video", cache=cache)
    settings = SiteSettings(pay_url=DEMO_URL, public_url=DEMO_URL, disclosure=Disclosure.from_translations(
        board.model.translations, board.model.default_language))
    site = build_site(record_values(record), read_video(Path(out) / "video"), token=token,
                      amount_due=amount_due(record), settings=settings, catalogs=load_catalogs())
    write_site(site, Path(out) / "site")
    return out, time.monotonic() - started, timeline.language


def run_demo(out: Path, *, size: tuple[int, int] | None = None, workers: int | None = None,
             cache: SegmentCache | None = None) -> int:
    records = [r for r in load_records(ROOT / "examples" / "customers.jsonl") if isinstance(r, Record)]
    jobs = []
    for path in sorted((ROOT / "storyboards").glob("*.yaml")):
        board = load_storyboard(path)
        for lang, record in pick_customers(records, board.model.purpose).items():
            jobs.append((str(path), record, str(out / board.name / f"{lang}-{record.customer_id}"), size, cache))
    workers = workers or min(os.cpu_count() or 1, 4)
    shown = f"{size[0]}x{size[1]}" if size else "full size"
    print(f"Rendering {len(jobs)} videos at {shown} with {workers} workers into {out}/ ...")
    failed = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_job, *job): job for job in jobs}
        for future in as_completed(futures):
            try:
                path, seconds, language = future.result()
            except BillcastError as exc:
                failed += 1
                print(f"  failed: {futures[future][2]}: {exc}", file=sys.stderr)
                continue
            print(f"  {path}/  ({language}, {seconds:.0f} s)")
    print(f"\nDone: {len(jobs) - failed} rendered, {failed} failed. Each folder holds video/ (video.mp4, "
          f"poster.jpg, captions.vtt, thumb.gif, cta.json) and site/ (the customer's page).\n"
          f"Open one with:  xdg-open {out}/bill_explainer/it-*/site/index.html")
    return 1 if failed else 0
