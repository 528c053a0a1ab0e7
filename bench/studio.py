"""The visual studio's latency at 1280x720, measured side by side in one run through the studio's own app.

    .venv/bin/python bench/studio.py            # bill_explainer for Maria, a few seconds
    .venv/bin/python bench/studio.py --steps 40 # a longer drag

What a person waits for while editing visually, each against the 300 ms a frame may take:

- select: clicking a layer in another scene moves the playhead there; the frame is drawn from the check
  already made (cold: the scene's sprites drawn for the first time; warm: drawn before);
- drag: each step of a drag is a frame of the text with the moved box applied to what it says, not yet
  written (checked, planned in every language, the moved sprite drawn, composed, JPEG);
- resize: the same with the box's size changing, so the text is fitted again at every step;
- drop: the edit written into the text (ruamel.yaml round trip, comments kept), then checked;
- layers: the planned boxes a click hits, fetched after each check;
- worker: the same frames (a scene drawn, a drag step) drawn in this process by the studio's task code, as
  the service did before its studio work moved into worker processes, and through the worker (pipe, pickled
  task, JPEG back), alternately, with the ratio of the medians.

Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_studio import ADMIN, make_app  # noqa: E402  (the app exactly as the studio's tests build it)

from billcast.service import studio_tasks, studio_web  # noqa: E402
from billcast.service.studio_worker import run_task  # noqa: E402

BUDGET = 0.300  # seconds a frame may take while selecting or dragging
TAGLINE = ["scenes", 0, "layers", 2, "box"]  # bill_explainer's intro tagline: [140, 430, 1000, 70]


class Client:
    """A signed-in studio client over a copy of the storyboards, as in the studio's tests."""

    def __init__(self, root: Path) -> None:
        self.app = make_app(root)
        self.client = self.app.test_client()
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN}"
        page = self.client.get("/studio/bill_explainer").get_data(as_text=True)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        self.maria = re.search(r'<option value="(s[0-9a-f]+)"[^>]*>Maria', page).group(1)
        self.text = (root / "storyboards" / "bill_explainer.yaml").read_text(encoding="utf-8")

    def post(self, path: str, **body) -> tuple[float, object]:
        start = time.perf_counter()
        response = self.client.post(f"/studio/bill_explainer/{path}", json={"text": self.text, "customer": self.maria,
                                                                            **body},
                                    headers={"X-CSRF-Token": self.csrf})
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:300])
        return elapsed, response


def summary(name: str, times: list[float]) -> dict:
    ordered = sorted(times)
    return {"what": name, "n": len(times), "median_ms": statistics.median(times) * 1000,
            "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, "max_ms": ordered[-1] * 1000,
            "max_vs_budget": ordered[-1] / BUDGET}


def side_by_side(studio: Client, scenes: list[dict], steps: int) -> list[dict]:
    """Frames drawn in this process by the task code (as before) and through the worker (now), alternately."""
    with studio.app.test_request_context():
        customer = next(c for c in studio_web.samples() if c.key == studio.maria)
        question = studio_web.Ask(text=studio.text, customer=customer, language="")
        pool, limits = studio_web.studio().pool(), studio_web.limits()
        times = [(s["start"] + s["end"]) / 2 + 0.08 for s in scenes]
        frames = [studio_web.task("bill_explainer", question, "frame", t=t) for t in times]
        drags = [studio_web.task("bill_explainer", question, "frame", t=2.5,
                                 ops=[{"op": "set", "path": TAGLINE, "value": [140 + 5 * i, 430, 1000, 70]}])
                 for i in range(1, steps + 1)]
        stats = studio_tasks.Task(op="stats", key=(), name="", text=studio.text, sample=None, language="", links={})
        trips = []
        for _ in range(50):  # the pipe, the pickled task (the whole text) and the answer, without any drawing
            start = time.perf_counter()
            run_task(pool, stats, limits, "checking", 422)
            trips.append(time.perf_counter() - start)
        rows = [summary("the worker's round trip, nothing drawn", trips)]
        for what, tasks in (("frame in a scene drawn", frames), ("drag: frame per step", drags)):
            before, now = [], []
            for task in tasks:
                studio_tasks.handle(task)  # the check made and the scene drawn in this process too
                for _ in range(3):
                    start = time.perf_counter()
                    meta, data = studio_tasks.handle(task)
                    before.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    meta, data = run_task(pool, task, limits, "checking", 422)
                    now.append(time.perf_counter() - start)
                    assert meta["status"] == 200 and data[:2] == b"\xff\xd8", meta
            rows += [summary(f"{what}, in this process (before)", before),
                     summary(f"{what}, through the worker (now)", now)]
            rows[-1]["vs_in_process"] = statistics.median(now) / statistics.median(before)
        return rows


def run(steps: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        studio = Client(Path(tmp))
        first_check, _ = studio.post("validate")
        _, layers = studio.post("layers")
        scenes = layers.get_json()["scenes"]
        cold = [studio.post("frame", t=(s["start"] + s["end"]) / 2)[0] for s in scenes]
        warm = [studio.post("frame", t=(s["start"] + s["end"]) / 2 + 0.04)[0] for s in scenes]
        drag, resize, drops, picks = [], [], [], []
        for i in range(1, steps + 1):
            box = [140 + 5 * i, 430 + (i % 3), 1000, 70]
            drag.append(studio.post("frame", t=2.5, ops=[{"op": "set", "path": TAGLINE, "value": box}])[0])
            sized = [140, 430, 1000 - 8 * i, 70 + i]
            resize.append(studio.post("frame", t=2.5, ops=[{"op": "set", "path": TAGLINE, "value": sized}])[0])
        for i in range(1, 6):
            took, response = studio.post("edit", ops=[{"op": "set", "path": TAGLINE, "value": [140 + 40 * i, 430, 1000, 70]}])
            drops.append(took)
            studio.text = response.get_json()["text"]
            picks.append(studio.post("layers")[0])
        worker = side_by_side(studio, scenes, steps)
        return [summary("first check of the text", [first_check]),
                summary("select: frame in a scene not drawn yet", cold), summary("select: frame in a scene drawn", warm),
                summary("drag: frame per step (moved box)", drag), summary("resize: frame per step (text fitted again)", resize),
                summary("drop: edit written into the text", drops), summary("layers after a check", picks), *worker]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps of each drag (default 20)")
    args = parser.parse_args()
    rows = run(args.steps)
    print(f"{'at 1280x720, bill_explainer for Maria':<52}{'n':>4}{'median':>10}{'p90':>10}{'max':>10}{'max/300ms':>11}")
    for row in rows:
        ratio = f"   median {row['vs_in_process']:.2f}x in process" if "vs_in_process" in row else ""
        print(f"{row['what']:<52}{row['n']:>4}{row['median_ms']:>8.1f}ms{row['p90_ms']:>8.1f}ms{row['max_ms']:>8.0f}ms"
              f"{row['max_vs_budget']:>11.2f}{ratio}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bench": "studio", "rows": rows, "peak_rss_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
