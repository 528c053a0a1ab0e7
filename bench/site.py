"""Personal pages built per second on one core, without rendering video; and the QR code's share.

    .venv/bin/python bench/site.py              # about 10 seconds
    .venv/bin/python bench/site.py --pages 5000

Every sample customer (examples/customers.jsonl and tricky_customers.jsonl) in
turn, each page with a fresh random token (so nothing is cached per recipient),
against one video's cta.json. Side by side in the same run: the QR code alone,
with this project's encoder (mask chosen by the standard's penalty, or fixed) and
with the ``qrcode`` library. Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billcast.jobs import Record, amount_due, load_records, record_values  # noqa: E402
from billcast.microsite import SiteSettings, build_site, parse_cta, qr_matrix, write_site  # noqa: E402

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

    with tempfile.TemporaryDirectory() as tmp:
        site = build(0)
        rows = [
            rate("build_site (page, all files)", args.pages, build),
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
    size = sum(len(data) for name, data in site.files.items() if name == "index.html")
    print(json.dumps({"bench": "site", "pages_per_s": round(rows[0]["per_s"], 1), "rows": rows,
                      "customers": len(items), "index_html_bytes": size, "cpu": pinned,
                      "python": platform.python_version(),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
