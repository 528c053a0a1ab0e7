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
from .records import Record, load_records, record_values

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
    started = time.monotonic()
    board = load_storyboard(storyboard)
    links = recipient_links(DEMO_URL, DEMO_URL, random_token())
    timeline = plan(board, record_values(record), links, size=size)
    render(timeline, out, cache=cache)
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
            print(f"  {path}/video.mp4  ({language}, {seconds:.0f} s)")
    print(f"\nDone: {len(jobs) - failed} rendered, {failed} failed. Each folder holds video.mp4, poster.jpg, "
          f"captions.vtt, thumb.gif and cta.json.\nOpen one with:  xdg-open {out}/bill_explainer/it-*/video.mp4")
    return 1 if failed else 0
