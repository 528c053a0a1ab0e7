"""Lighthouse on two personal pages (Italian and Arabic), mobile profile: performance and accessibility.

    .venv/bin/python bench/lighthouse.py             # 3 runs a page, about 2 minutes
    .venv/bin/python bench/lighthouse.py --runs 5 --keep var/lighthouse

The first run installs Lighthouse 12 from npm into .venv/npm (beside axe-core;
``make test`` does not need it).

Each page is rendered at 1280x720 as a campaign publishes it, built, and served
over HTTP on 127.0.0.1 (byte ranges for the video, beacons taken, no
compression: as ``billcast serve`` serves it). Lighthouse drives Debian's
Chromium (``CHROME_PATH=/usr/bin/chromium``, headless, no sandbox) with its
default mobile profile: a mid-range phone, slow 4G simulated, CPU slowed 4x.
Prints each run, the median per page, and one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billcast.jobs import amount_due, load_record_file, record_values  # noqa: E402
from billcast.microsite import Disclosure, SiteSettings, build_site, read_video, write_site  # noqa: E402
from billcast.renderer import load_storyboard, plan, render  # noqa: E402

LIGHTHOUSE = ROOT / ".venv" / "npm" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
PAGES = {  # language: (record, storyboard, token)
    "it": ("maria.json", "bill_explainer", "ItalianBenchT0ken_0123"),
    "ar": ("fatima.json", "soft_reminder", "ArabicBenchT0ken_01234"),
}
METRICS = {"first-contentful-paint": "FCP s", "largest-contentful-paint": "LCP s", "total-blocking-time": "TBT ms",
           "cumulative-layout-shift": "CLS", "speed-index": "SI s"}


class Handler(SimpleHTTPRequestHandler):
    """The page folder, with byte ranges (a video needs them) and the beacons taken and dropped."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (the http.server spelling)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def send_head(self):  # noqa: ANN201 - http.server's signature
        path = Path(self.translate_path(self.path.split("?")[0]))
        if "range" not in self.headers or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first, _, last = self.headers["range"].removeprefix("bytes=").partition("-")
        start, end = int(first or 0), min(int(last) if last else len(data) - 1, len(data) - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


def install_lighthouse() -> None:
    """Lighthouse from npm into .venv/npm, as the Makefile installs axe-core there."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is missing: apt-get install npm, then run this again")
    print("installing lighthouse@12 into .venv/npm", file=sys.stderr)
    subprocess.run([npm, "install", "--prefix", str(ROOT / ".venv" / "npm"), "--no-audit", "--no-fund",
                    "--loglevel=error", "lighthouse@12"], check=True, timeout=600)


def build_pages(root: Path, base: str) -> dict[str, str]:
    """Render and build each page under ``root/r/<token>/``; return their URLs."""
    urls = {}
    for key, (record_file, storyboard, token) in PAGES.items():
        record = load_record_file(ROOT / "examples" / record_file)
        board = load_storyboard(ROOT / "storyboards" / f"{storyboard}.yaml")
        links = {"page": f"{base}/r/{token}/", "pay": f"{base}/pay/{token}?option=full&src=qr",
                 "plan": f"{base}/pay/{token}?option=plan&src=qr"}
        video = root / "render" / token
        render(plan(board, record_values(record), links), video)
        settings = SiteSettings(pay_url=base, public_url=base, disclosure=Disclosure.from_translations(
            board.model.translations, board.model.default_language))
        site = build_site(record_values(record), read_video(video), token=token, amount_due=amount_due(record),
                          settings=settings)
        write_site(site, root / "r" / token)
        urls[key] = f"{base}/r/{token}/"
    return urls


def lighthouse(url: str, out: Path) -> dict:
    """One Lighthouse run (mobile, performance and accessibility); its scores, metrics and bytes."""
    command = [str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
               "--only-categories=performance,accessibility", "--chrome-flags=--headless --no-sandbox"]
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": CHROMIUM}, timeout=300)
    report = json.loads(out.read_text(encoding="utf-8"))
    audits = report["audits"]
    requests = audits["network-requests"]["details"]["items"]
    before_video = sum(item.get("transferSize", 0) for item in requests if not item["url"].endswith(".mp4"))
    return {"performance": round(report["categories"]["performance"]["score"] * 100),
            "accessibility": round(report["categories"]["accessibility"]["score"] * 100),
            **{label: audits[key]["numericValue"] / (1000 if label.endswith(" s") else 1)
               for key, label in METRICS.items()},
            "lcp_element": _lcp_element(audits), "requests": len(requests), "bytes_before_video": before_video,
            "lighthouse": report["lighthouseVersion"]}


def _lcp_element(audits: dict) -> str:
    items = (audits.get("largest-contentful-paint-element", {}).get("details") or {}).get("items") or []
    for item in items:
        for node in (item.get("items") or [item]):
            found = (node.get("node") or {}).get("nodeLabel") or (node.get("node") or {}).get("selector")
            if found:
                return str(found)[:40]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs a page (default 3; the median counts)")
    parser.add_argument("--keep", type=Path, help="keep the pages and the reports in this folder")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)")
    if not LIGHTHOUSE.exists():
        install_lighthouse()
    folder = Path(tempfile.mkdtemp(prefix="billcast-lighthouse-"))
    root = args.keep or folder
    root.mkdir(parents=True, exist_ok=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        urls = build_pages(root, f"http://127.0.0.1:{httpd.server_port}")
        results = {key: [lighthouse(url, root / f"lighthouse-{key}-{i}.json") for i in range(args.runs)]
                   for key, url in urls.items()}
    finally:
        httpd.shutdown()
        httpd.server_close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    columns = ["performance", "accessibility", *METRICS.values(), "bytes_before_video", "requests"]
    print(f"{'page':<6}{'run':<8}" + "".join(f"{c[:12]:>13}" for c in columns) + "  LCP element")
    summary = {}
    for key, runs in results.items():
        median = {c: statistics.median(run[c] for run in runs) for c in columns}
        summary[key] = median | {"lcp_element": runs[0]["lcp_element"]}
        for label, row in [*((str(i + 1), run) for i, run in enumerate(runs)), ("median", median)]:
            cells = "".join(f"{row[c]:>13.3g}" if isinstance(row[c], float) else f"{row[c]:>13}" for c in columns)
            print(f"{key:<6}{label:<8}{cells}  {runs[0]['lcp_element'] if label == 'median' else ''}")
    print(json.dumps({"bench": "lighthouse", "lighthouse": results["it"][0]["lighthouse"], "runs": args.runs,
                      "pages": summary}))


if __name__ == "__main__":
    main()
