"""Render cost per customer: the MoviePy reference, the fast engine cold and warm, and the encode limit.

    .venv/bin/python bench/render.py                       # 20 customers, 3 of them also through MoviePy
    .venv/bin/python bench/render.py --customers 6 --moviepy 1 --presets veryfast,medium
    .venv/bin/python bench/render.py --customers 6 --moviepy 0 --analysis default --analysis none

All in one run, one process, one customer after another, at 1280x720, 25 fps:

- moviepy: the reference engine, every frame composed in numpy;
- fast-cold: the fast engine with an empty segment cache for every customer;
- fast-warm: the fast engine with a cache that other customers (one per language) filled,
  so the intro, the sound and the repeated frames exist and everything personal does not;
- limit: ffmpeg encoding only the frames of the personal scenes, from raw YUV already in a
  file, with the same encoder settings: what encoding alone costs, nothing drawn or joined.

CPU is the process's and its children's (ffmpeg) user+system seconds. Prints a table and
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from billcast.jobs.links import recipient_links, recipient_token  # noqa: E402
from billcast.jobs import Record, load_records, record_values  # noqa: E402
from billcast.renderer import (Compositor, Drawer, SegmentCache, VideoSettings, default_fonts_dir, load_storyboard,  # noqa: E402
                      plan, preview, render)
from billcast.renderer.encoding import X264_ANALYSIS  # noqa: E402
from billcast.renderer import engine_ffmpeg  # noqa: E402
from billcast.renderer.engine_ffmpeg import ffmpeg_exe  # noqa: E402
from billcast.renderer.engine_ffmpeg import run as run_ffmpeg  # noqa: E402
from billcast.renderer import segments  # noqa: E402
from billcast.renderer.segments import split_scene  # noqa: E402

SECRET = b"bench-link-secret-" + b"x" * 16


def links_of(values: dict) -> dict[str, str]:
    """Each customer's own links (as in a campaign), so the QR code on the pay scene is theirs too."""
    return recipient_links("https://bills.example.com", "https://pay.example.com",
                           recipient_token(SECRET, "bench", values["customer_id"]))
SIZE, FPS = (1280, 720), 25


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def python_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


FFMPEG_PEAK_KB = [0]


def watched_run(argv: list[str]) -> None:
    """``engine_ffmpeg.run``, reading ffmpeg's own peak resident memory (VmHWM) while it runs."""
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        FFMPEG_PEAK_KB[0] = max(FFMPEG_PEAK_KB[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        err = proc.stderr.read()
    if proc.returncode:
        raise SystemExit(f"ffmpeg failed: {err.decode(errors='replace')[-500:]}")


def customers(count: int, *, variant: int = 0) -> list[dict]:
    """``count`` customers' values, the languages taking turns, each bill a little different.

    The sample records repeat past 15, so each copy's amounts and usage are moved by a few
    cents and kWh: every customer's personal scenes are their own, as in a real batch.
    ``variant`` gives another, disjoint set (used to warm the cache).
    """
    records = [r for r in load_records(ROOT / "examples" / "customers.jsonl")
               if isinstance(r, Record) and r.bill.usage and r.bill.lines]
    by_language: dict[str, list[Record]] = {}
    for r in records:
        by_language.setdefault((r.locale or "en").split("-")[0], []).append(r)
    groups = list(by_language.values())
    people = []
    for i in range(count):
        group = groups[i % len(groups)]
        record = group[(i // len(groups)) % len(group)]
        people.append(_moved(record_values(record), 1 + i + variant * 1000))
    return people


def _moved(values: dict, k: int) -> dict:
    """Another customer like ``values``: another name, due date, amounts and usage."""
    bill = values["bill"]
    cents = Decimal(k) / 100
    lines = [dict(line) for line in bill["lines"]]
    lines[0]["amount"] += cents
    usage = [{**u, "quantity": u["quantity"] + k} for u in bill["usage"]]
    return {**values, "customer_id": f"{values['customer_id']}-{k}", "first_name": f"{values['first_name']} {k}",
            "bill": {**bill, "total": bill["total"] + cents, "lines": lines, "usage": usage,
                     "due_date": bill["due_date"] + timedelta(days=k % 28)}}


def timeline_of(board, values: dict):
    return plan(board, values, links_of(values), size=SIZE, fps=FPS)


def measured(fn: Callable[[], Path]) -> tuple[float, Path]:
    start = cpu_seconds()
    out = fn()
    return cpu_seconds() - start, out


def psnr_vs_source(video: Path, timeline, samples: int = 8) -> float:
    """Mean PSNR of decoded frames against the planned pictures, at frames spread over the video."""
    wanted = {round(i * (timeline.frames - 1) / (samples - 1)) for i in range(samples)}
    values = []
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                got = frame.to_ndarray(format="rgb24").astype(np.float64)
                want = np.asarray(preview(timeline, index / timeline.fps), np.float64)
                mse = ((got - want) ** 2).mean()
                values.append(99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse))
    return statistics.fmean(values)


def encode_limit(timeline, personal: list, settings: VideoSettings, work: Path) -> float:
    """CPU seconds ffmpeg spends encoding the personal scenes' frames, given them as raw YUV."""
    comp = Compositor(timeline, Drawer(default_fonts_dir()))
    raw = work / "frames.yuv"
    convert = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIZE[0]}x{SIZE[1]}",
               "-framerate", str(FPS), "-i", "-", "-pix_fmt", "yuv420p", "-f", "rawvideo", str(raw)]
    with subprocess.Popen(convert, stdin=subprocess.PIPE) as proc:  # not timed: making the input
        for scene in personal:
            for i in range(scene.frames):
                proc.stdin.write(comp.frame_index(scene.start_frame + i).tobytes())
        proc.stdin.close()
    options = settings.segment_options(SIZE, FPS)
    argv = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{SIZE[0]}x{SIZE[1]}",
            "-framerate", str(FPS), "-i", str(raw)]
    for key, value in options.items():
        argv += [f"-{key}", value]
    argv.append(str(work / "limit.mp4"))
    before = cpu_seconds()
    subprocess.run(argv, check=True)
    spent = cpu_seconds() - before
    raw.unlink()
    return spent


def configs(args: argparse.Namespace) -> list[tuple[str, VideoSettings]]:
    """Encoder settings to compare: every preset with every analysis, each tagged by what differs from the first."""
    found = []
    for preset in args.presets:
        for analysis in args.analysis or ["default"]:
            options = {"default": X264_ANALYSIS, "none": ""}.get(analysis, analysis)
            differs = [p for p, first in ((preset, args.presets[0]), (analysis, (args.analysis or ["default"])[0]))
                       if p != first]
            found.append((f"[{', '.join(differs)}]" if differs else "", VideoSettings(preset=preset, analysis=options)))
    return found


def summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "max": max(values),
            "n": len(values)}


def run(args: argparse.Namespace) -> dict:
    board = load_storyboard(ROOT / "storyboards" / "bill_explainer.yaml")
    people = customers(args.customers)
    holds = segments.MIN_HOLD
    work = Path(tempfile.mkdtemp(prefix="billcast-bench-"))
    rows: dict[str, dict] = {}
    try:
        for tag, settings in configs(args):
            cold, warm, sizes, quality = [], [], [], []
            for record in people:  # cold: an empty cache for each customer
                cache = SegmentCache(work / "cold-cache")
                spent, _ = measured(lambda: render(timeline_of(board, record), work / "cold", cache=cache,
                                                   settings=settings).out)
                cold.append(spent)
                shutil.rmtree(work / "cold-cache")
            cache = SegmentCache(work / f"warm-cache-{len(rows)}")
            for values in customers(4, variant=1):  # other customers, one per language, fill the cache
                render(timeline_of(board, values), work / "warmup", cache=cache, settings=settings)
            for record in people:
                timeline = timeline_of(board, record)
                spent, out = measured(lambda: render(timeline, work / "warm", cache=cache, settings=settings).out)
                warm.append(spent)
                sizes.append((out / "video.mp4").stat().st_size)
                if len(quality) < args.quality:
                    quality.append(psnr_vs_source(out / "video.mp4", timeline))
            rows["fast-cold" + tag] = {"cpu_s": summary(cold)}
            rows["fast-warm" + tag] = {"cpu_s": summary(warm), "bytes": statistics.fmean(sizes),
                                       "psnr_db": statistics.fmean(quality) if quality else None}
        engine_ffmpeg.run = watched_run  # memory, in a pass of its own: watching costs CPU
        settings = configs(args)[0][1]  # what the other runs use
        for values in customers(2, variant=2):
            render(timeline_of(board, values), work / "memory", cache=cache, settings=settings)
        engine_ffmpeg.run = run_ffmpeg
        peaks = {"python_fast_mb": python_peak_mb(), "ffmpeg_fast_mb": FFMPEG_PEAK_KB[0] / 1024}
        if args.without_holds:  # what holds buy: every frame of every part encoded
            segments.MIN_HOLD = 10 ** 9
            cache = SegmentCache(work / "warm-cache-no-holds")
            for values in customers(4, variant=1):
                render(timeline_of(board, values), work / "warmup", cache=cache, settings=settings)
            spent_nh, sizes_nh = [], []
            for record in people[:args.without_holds]:
                spent, out = measured(lambda: render(timeline_of(board, record), work / "warm", cache=cache,
                                                     settings=settings).out)
                spent_nh.append(spent)
                sizes_nh.append((out / "video.mp4").stat().st_size)
            segments.MIN_HOLD = holds
            rows["fast-warm[no holds]"] = {"cpu_s": summary(spent_nh), "bytes": statistics.fmean(sizes_nh)}
        spent_mp, sizes_mp, quality_mp = [], [], []
        for record in people[:args.moviepy]:
            timeline = timeline_of(board, record)
            spent, out = measured(lambda: render(timeline, work / "mp", engine="moviepy", settings=settings).out)
            spent_mp.append(spent)
            sizes_mp.append((out / "video.mp4").stat().st_size)
            quality_mp.append(psnr_vs_source(out / "video.mp4", timeline))
        if spent_mp:
            rows["moviepy"] = {"cpu_s": summary(spent_mp), "bytes": statistics.fmean(sizes_mp),
                               "psnr_db": statistics.fmean(quality_mp)}
        limits = []
        warmed = {scene for values in customers(4, variant=1) for scene in timeline_of(board, values).scenes}
        for record in people[:args.limit]:
            timeline = timeline_of(board, record)
            personal = [s for s in timeline.scenes if s not in warmed]  # what the warm cache lacks
            limits.append(encode_limit(timeline, personal, settings, work))
        rows["limit"] = {"cpu_s": summary(limits), "frames": sum(s.frames for s in personal)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peaks["python_all_mb"] = python_peak_mb()
    warm = rows["fast-warm"]["cpu_s"]["mean"]
    result = {"bench": "render", "storyboard": "bill_explainer", "size": list(SIZE), "fps": FPS,
              "customers": len(people), "rows": rows, "peak_rss_mb": peaks,
              "ratio_moviepy_over_fast_warm": rows["moviepy"]["cpu_s"]["mean"] / warm if "moviepy" in rows else None,
              "ratio_fast_warm_over_limit": warm / rows["limit"]["cpu_s"]["mean"],
              "parts_per_scene": [len(split_scene(s)) for s in timeline_of(board, people[0]).scenes]}
    return result


def print_table(result: dict) -> None:
    print(f"{'run':22} {'CPU s/customer (mean / median / max, n)':44} {'bytes/video':>12} {'PSNR dB':>8}")
    for name, row in result["rows"].items():
        cpu = row["cpu_s"]
        size = f"{row['bytes'] / 1e6:.2f} MB" if row.get("bytes") else ""
        quality = f"{row['psnr_db']:.1f}" if row.get("psnr_db") else ""
        print(f"{name:22} {cpu['mean']:8.2f} / {cpu['median']:6.2f} / {cpu['max']:6.2f}, n={cpu['n']:<14} "
              f"{size:>12} {quality:>8}")
    peaks = result["peak_rss_mb"]
    print(f"peak RSS of the fast engine: python {peaks['python_fast_mb']:.0f} MB, "
          f"each ffmpeg at most {peaks['ffmpeg_fast_mb']:.0f} MB (this process after MoviePy too: "
          f"{peaks['python_all_mb']:.0f} MB)")
    if result["ratio_moviepy_over_fast_warm"]:
        print(f"moviepy / fast-warm: {result['ratio_moviepy_over_fast_warm']:.1f}x")
    print(f"fast-warm / limit: {result['ratio_fast_warm_over_limit']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--moviepy", type=int, default=3, help="how many of them also go through MoviePy")
    parser.add_argument("--limit", type=int, default=3, help="how many of them the encode limit is measured on")
    parser.add_argument("--quality", type=int, default=3, help="how many videos PSNR is measured on, per run")
    parser.add_argument("--without-holds", type=int, default=0,
                        help="how many customers to render warm with every frame encoded (no holds)")
    parser.add_argument("--presets", type=lambda s: s.split(","), default=["veryfast"],
                        help="x264 presets to compare, the first being the one the other runs use")
    parser.add_argument("--analysis", action="append",
                        help="x264 options on top of the preset to compare (repeat the flag): 'default' is the "
                             "engine's (renderer.encoding.X264_ANALYSIS), 'none' the preset's own, else x264-params "
                             "text such as subme=0:me=dia; the first is the one the other runs use")
    args = parser.parse_args()
    started = time.monotonic()
    result = run(args)
    result["wall_s"] = time.monotonic() - started
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
