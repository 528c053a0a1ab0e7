"""Preview latency and the reference engine's render cost, measured side by side in one run.

    .venv/bin/python bench/preview.py            # previews only (a few seconds)
    .venv/bin/python bench/preview.py --render   # also one 720p MoviePy render per storyboard

Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from billcast.jobs.links import recipient_links  # noqa: E402
from billcast.jobs import Record, load_records, record_values  # noqa: E402
from billcast.renderer import Compositor, Drawer, default_fonts_dir, load_storyboard, plan, render  # noqa: E402

CUSTOMERS = {"bill_explainer": "IT-000123", "soft_reminder": "DE-000456", "firm_reminder": "US-001235"}
LINKS = recipient_links("http://127.0.0.1:8000", "http://127.0.0.1:8000", "x" * 22)


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(name: str, record: Record, do_render: bool) -> dict:
    t0 = time.perf_counter()
    board = load_storyboard(ROOT / "storyboards" / f"{name}.yaml")
    t1 = time.perf_counter()
    timeline = plan(board, record_values(record), LINKS)
    t2 = time.perf_counter()
    comp = Compositor(timeline, Drawer(default_fonts_dir()))
    mid = [s.start + s.duration * 0.8 for s in timeline.scenes]
    cold = []
    for t in mid:  # first frame of each scene draws its sprites
        s = time.perf_counter()
        comp.frame(t)
        cold.append(time.perf_counter() - s)
    s = time.perf_counter()
    for t in mid:
        comp.frame(t)
    warm = (time.perf_counter() - s) / len(mid)
    row = {"storyboard": name, "load_s": t1 - t0, "plan_s": t2 - t1, "frame_cold_max_s": max(cold),
           "frame_cold_mean_s": sum(cold) / len(cold), "frame_warm_s": warm}
    with tempfile.NamedTemporaryFile(suffix=".json", mode="w", encoding="utf-8") as fh:
        fh.write(record.model_dump_json())
        fh.flush()
        s = time.perf_counter()
        subprocess.run([sys.executable, "-m", "billcast.cli", "preview", str(ROOT / "storyboards" / f"{name}.yaml"),
                        "--customer", fh.name, "--at", f"{mid[len(mid) // 2]:.2f}", "--out",
                        str(Path(tempfile.gettempdir()) / "bench-preview.png")], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        row["cli_wall_s"] = time.perf_counter() - s
    if do_render:
        with tempfile.TemporaryDirectory() as tmp:
            c0, w0 = cpu_seconds(), time.perf_counter()
            render(timeline, Path(tmp) / "out", engine="moviepy")
            row["moviepy_720p_cpu_s"] = cpu_seconds() - c0
            row["moviepy_720p_wall_s"] = time.perf_counter() - w0
            row["video_bytes"] = (Path(tmp) / "out" / "video.mp4").stat().st_size
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true", help="also render each storyboard at 720p with MoviePy")
    args = parser.parse_args()
    records = {r.customer_id: r for r in load_records(ROOT / "examples" / "customers.jsonl") if isinstance(r, Record)}
    rows = [measure(name, records[cid], args.render) for name, cid in CUSTOMERS.items()]
    cols = [k for k in rows[0] if k != "storyboard"]
    print(f"{'storyboard':<16}" + "".join(f"{c:>20}" for c in cols))
    for row in rows:
        print(f"{row['storyboard']:<16}" + "".join(f"{row[c]:>20.3f}" if isinstance(row[c], float)
                                                   else f"{row[c]:>20}" for c in cols))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bench": "preview", "rows": rows, "peak_rss_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
