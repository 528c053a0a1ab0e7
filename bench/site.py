"""Personal pages built per second on one core, without rendering video; the QR code's and the fonts' share.

    .venv/bin/python bench/site.py              # about a minute
    .venv/bin/python bench/site.py --pages 5000

Every sample customer (examples/customers.jsonl and tricky_customers.jsonl) in
turn, each page with a fresh random token (so nothing is cached per recipient),
against one video's cta.json. Side by side in the same run: pages whose font
subsets are already cut (as in a campaign, where most pages share them) and
pages that cut theirs anew; one subset alone; the QR code alone, with this
project's encoder (mask chosen by the standard's penalty, or fixed) and with the
``qrcode`` library. Then what the fonts weigh: the subsets of every sample page
against the whole fonts, and against subsets cut to each page's own text alone;
and the 1280x720 posters of the example customers as ``render`` encodes them,
against the quality 88 used before. Prints tables and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billcast.jobs import Record, amount_due, load_record_file, load_records, record_values  # noqa: E402
from billcast.microsite import SiteSettings, build_site, parse_cta, qr_matrix, write_site  # noqa: E402
from billcast.microsite import fonts  # noqa: E402
from billcast.microsite.charset import page_characters  # noqa: E402
from billcast.renderer import load_storyboard, plan, preview  # noqa: E402
from billcast.renderer.render import POSTER_JPEG  # noqa: E402

CTA = ROOT / "tests" / "data" / "site" / "cta.json"
SETTINGS = SiteSettings(pay_url="https://pay.lumen-energia.example", public_url="https://bills.lumen-energia.example")


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned"


def rate(label: str, count: int, work: Callable[[int], object]) -> dict:
    for i in range(min(count, 50)):  # warm: templates compiled, catalogues and locales loaded
        work(i)
    started = time.perf_counter()
    for i in range(count):
        work(i)
    elapsed = time.perf_counter() - started
    return {"what": label, "count": count, "per_s": count / elapsed, "ms_each": elapsed / count * 1000}


def qrcode_library(mask: int | None) -> Callable[[int], object]:
    import qrcode
    from qrcode.util import MODE_8BIT_BYTE, QRData

    def make(_: int) -> object:
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=mask)
        code.add_data(QRData(pay_url().encode(), mode=MODE_8BIT_BYTE))
        code.make(fit=True)
        return code.get_matrix()

    return make


def pay_url() -> str:
    return f"{SETTINGS.pay_url}/pay/{secrets.token_urlsafe(16)}?option=full&src=qr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000, help="pages to build (default 3000)")
    args = parser.parse_args()
    pinned = pin_to_one_core()
    records = [r for name in ("customers.jsonl", "tricky_customers.jsonl")
               for r in load_records(ROOT / "examples" / name) if isinstance(r, Record)]
    items = [(record_values(r), amount_due(r)) for r in records]
    video = parse_cta(json.loads(CTA.read_text(encoding="utf-8")), CTA.parent, source=str(CTA))
    tokens = [secrets.token_urlsafe(16) for _ in range(args.pages)]

    def build(i: int) -> object:
        values, due = items[i % len(items)]
        return build_site(values, video, token=tokens[i], amount_due=due, settings=SETTINGS)

    def build_cold(i: int) -> object:
        fonts._subset.cache_clear()
        return build(i)

    ascii_ = sorted(fonts._drawn(fonts.FACES[0]) & set(range(0x20, 0x7F)))
    extras = iter(sorted(fonts._drawn(fonts.FACES[0]) - set(ascii_)))

    def subset_one(i: int) -> object:  # one face cut to printable ASCII and a letter never asked for before
        return fonts._subset(fonts.FACES[0].file, frozenset([*ascii_, next(extras)]))

    with tempfile.TemporaryDirectory() as tmp:
        site = build(0)
        rows = [
            rate("build_site (page, all files)", args.pages, build),
            rate("build_site, fonts cut anew", max(args.pages // 100, 20), build_cold),
            rate("one font subset (WOFF2)", max(args.pages // 100, 20), subset_one),
            rate("write_site (one folder, no video)", 200,
                 lambda i: write_site(site.__class__(files=site.files, copies={}), Path(tmp) / f"p{i}")),
            rate("QR: ours, best mask", args.pages, lambda _: qr_matrix(pay_url())),
            rate("QR: ours, fixed mask 0", args.pages, lambda _: qr_matrix(pay_url(), mask=0)),
            rate("QR: qrcode lib, best mask", max(args.pages // 10, 50), qrcode_library(None)),
            rate("QR: qrcode lib, fixed mask 0", max(args.pages // 5, 50), qrcode_library(0)),
        ]
    print(f"{'what':<36}{'count':>8}{'per second':>14}{'ms each':>10}")
    for row in rows:
        print(f"{row['what']:<36}{row['count']:>8}{row['per_s']:>14.1f}{row['ms_each']:>10.3f}")
    weights = font_weights([build(i) for i in range(len(items))])
    posters = poster_sizes()
    size = sum(len(data) for name, data in site.files.items() if name == "index.html")
    print(json.dumps({"bench": "site", "pages_per_s": round(rows[0]["per_s"], 1), "rows": rows,
                      "customers": len(items), "index_html_bytes": size, "fonts": weights, "posters": posters,
                      "cpu": pinned, "python": platform.python_version(),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def font_weights(sites: list) -> dict:
    """What the sample pages' fonts weigh, as built and as they would be cut to each page's own text alone."""
    built = [{name: len(data) for name, data in site.files.items() if name.endswith(".woff2")} for site in sites]
    alone = [{font.name: len(font.data) for font in fonts.web_fonts(page_characters(site.html))} for site in sites]
    whole = {face.file: len(fonts._source(face.file)) for face in fonts.FACES}
    out = {"pages": len(sites), "whole_fonts_latin": whole["NotoSans-Regular.ttf"] + whole["NotoSans-Bold.ttf"],
           "whole_fonts_arabic": sum(whole.values())}
    print(f"\n{'fonts of the sample pages':<36}{'files':>8}{'median KB':>11}{'max KB':>9}")
    for label, pages in (("as built (text + language)", built), ("cut to the page's text alone", alone)):
        totals = sorted(sum(page.values()) for page in pages)
        files = len({name for page in pages for name in page})
        out[label] = {"distinct_files": files, "median_bytes": statistics.median(totals), "max_bytes": totals[-1]}
        print(f"{label:<36}{files:>8}{statistics.median(totals) / 1000:>11.1f}{totals[-1] / 1000:>9.1f}")
    print(f"{'whole fonts (Latin / with Arabic)':<36}{'':>8}{out['whole_fonts_latin'] / 1000:>11.1f}"
          f"{out['whole_fonts_arabic'] / 1000:>9.1f}")
    return out


def poster_sizes() -> list[dict]:
    """The example customers' 1280x720 posters as ``render`` encodes them, and at quality 88 (as before)."""
    links = {"page": "https://x.example/r/T/", "pay": "https://x.example/pay/T", "plan": "https://x.example/pay/T"}
    out = []
    print(f"\n{'720p poster':<36}{'KB now':>8}{'PSNR dB':>9}{'KB at q88':>11}{'PSNR dB':>9}")
    for record_file, storyboard in (("maria.json", "bill_explainer"), ("michael.json", "firm_reminder"),
                                    ("fatima.json", "soft_reminder")):
        timeline = plan(load_storyboard(ROOT / "storyboards" / f"{storyboard}.yaml"),
                        record_values(load_record_file(ROOT / "examples" / record_file)), links, size=(1280, 720))
        frame = preview(timeline, timeline.poster_time).convert("RGB")
        now, before = jpeg(frame, POSTER_JPEG), jpeg(frame, {"quality": 88, "optimize": True, "progressive": True})
        row = {"record": record_file, "bytes": now[0], "psnr": now[1], "bytes_q88": before[0], "psnr_q88": before[1]}
        out.append(row)
        print(f"{record_file:<36}{now[0] / 1000:>8.1f}{now[1]:>9.1f}{before[0] / 1000:>11.1f}{before[1]:>9.1f}")
    return out


def jpeg(frame, options: dict) -> tuple[int, float]:
    """The JPEG's size and its PSNR against the frame."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", **options)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float64)
    error = np.mean((decoded - np.asarray(frame, np.float64)) ** 2)
    return len(buffer.getvalue()), round(float(10 * np.log10(255 ** 2 / error)), 1)


if __name__ == "__main__":
    main()
