"""What the studio's worker process does with the editor's text: check it, draw a frame, list its layers,
its merge fields, its translations grid, and render its preview video.

This runs only in the worker (``billcast.jobs.jail``), under the studio's CPU, memory and time limits,
never in the process that answers requests. The worker keeps the last checks by (text, customer,
language, assets), so a move of the time slider costs only the drawing of one frame. Each task answers
``(meta, data)``: ``meta`` a JSON value ``{"status", "json", "headers"}``, ``data`` the bytes of a frame
or of a video's files.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from billcast.jobs.storyboard_check import Checked, Sample
from billcast.renderer import BillcastError, SegmentCache, Storyboard, StoryboardModel, Timeline, plan, render

from .studio_check import Checks, check_sample, frame_jpeg, preview_plan, problem_json, video_timeline
from .studio_grid import FILTERS, layer_json, merge_fields, translation_grid
from .studio_yaml import EditError, edit_data, parse_ops

THUMB_WIDTHS = (160, 240, 320, 480, 640)
FILES = {  # what a preview video's page plays, and the Content-Type of each
    "video.mp4": "video/mp4",
    "captions.vtt": "text/vtt; charset=utf-8",
    "cta.json": "application/json",
    "poster.jpg": "image/jpeg",
}
CACHE_BYTES = 512 * 1024**2  # the preview videos' segment cache


@dataclass(frozen=True)
class Task:
    """One thing asked of the worker about an editor's text; ``key`` names the check it needs."""

    op: str  # check | frame | layers | fields | translations | render | stats
    key: tuple
    name: str
    text: str
    sample: Sample | None
    language: str
    links: Mapping[str, str] = field(repr=False)
    assets_dir: Path | None = None
    fonts_dir: Path | None = None
    args: Mapping[str, Any] = field(default_factory=dict)


_checks = Checks()
_grids = Checks(size=8)
_made = {"checks": 0}


def answer(body: Any, status: int = 200, data: bytes = b"", **headers: str) -> tuple[dict[str, Any], bytes]:
    return {"status": status, "json": body, "headers": headers}, data


def result(found: Checked) -> dict[str, Any]:
    """A check as the editor uses it: every problem with its line; with a plan, what the preview needs;
    with a parsed storyboard, the storyboard as the model reads it (defaults filled in)."""
    out: dict[str, Any] = {"ok": found.ok, "errors": [problem_json(p) for p in found.problems]}
    if found.board is not None:
        out["doc"] = found.board.model.model_dump(mode="json")
    planned = preview_plan(found)
    if planned is not None:
        board, timeline = found.board, planned.timeline
        out["preview"] = {
            "duration": timeline.duration, "fps": timeline.fps, "poster_time": timeline.poster_time,
            "size": list(timeline.size), "locale": timeline.locale, "language": timeline.language,
            "direction": timeline.direction,
            "scenes": [{"id": s.id, "start": s.start, "end": s.end,
                        "line": board.line_of(("scenes", s.index)) if board else None} for s in timeline.scenes],
        }
    return out


def checked(task: Task) -> Checked:
    """The check of the task's text, from the worker's cache or made now."""

    def make() -> Checked:
        _made["checks"] += 1
        return check_sample(task.text, task.name, task.sample, task.language, task.links, task.assets_dir)

    return _checks.get(task.key, make)


class Refused(Exception):
    def __init__(self, body: Any, status: int) -> None:
        super().__init__("refused")
        self.body, self.status = body, status


def _dragged(found: Checked, ops: Any, links: Mapping[str, str]) -> Timeline:
    """The checked text's plan with boxes moved or resized by ``ops`` (``set`` of a layer's ``box``): a drag's
    frames, not written. Only the boxes change, and the model checks them, so the text's own check stands
    and only the asked language is planned again."""
    planned = preview_plan(found)
    assert planned is not None and found.board is not None
    try:
        parsed = parse_ops(ops)
        if any(op["op"] != "set" or "box" not in op["path"][-2:] for op in parsed):
            raise EditError("a frame previews moved or resized boxes only: set a layer's box")
        data = edit_data(found.board.model.model_dump(mode="json", exclude_unset=True), parsed)
    except EditError as exc:
        raise Refused({"error": str(exc)}, 400) from None
    try:
        model = StoryboardModel.model_validate(data)
        board = Storyboard(model, path=found.board.path, lines=found.board.lines, assets_dir=found.board.assets_dir)
        return plan(board, planned.sample.values, links, size=planned.timeline.size, locale=planned.locale)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Refused({"error": f"that box cannot be drawn: {first['msg'].removeprefix('Value error, ')}"}, 422) from None
    except BillcastError as exc:
        raise Refused({"error": f"that box cannot be drawn: {exc}"}, 422) from None


def frame(task: Task, found: Checked) -> tuple[dict[str, Any], bytes]:
    """The frame at ``t`` (with ``ops``: boxes moved), as JPEG, ``width`` pixels wide at most."""
    timeline = preview_plan(found).timeline  # type: ignore[union-attr]
    if task.args.get("ops"):
        try:
            timeline = _dragged(found, task.args["ops"], task.links)
        except Refused as exc:
            return answer(exc.body, exc.status)
    try:
        t = float(task.args.get("t", 0))
    except (TypeError, ValueError):
        t = 0.0
    width = task.args.get("width")
    width = min((w for w in THUMB_WIDTHS if w >= width), default=None) if isinstance(width, int) else None
    image, shown = frame_jpeg(timeline, t if t == t else 0.0, task.fonts_dir, width)  # NaN -> 0
    return answer(None, 200, image, **{"X-Frame-Time": f"{shown:.3f}"})


def fields(task: Task, found: Checked) -> tuple[dict[str, Any], bytes]:
    translations: dict[str, str] = {}
    if found.board is not None:
        model = found.board.model
        planned = preview_plan(found)
        language = planned.timeline.language if planned else model.default_language
        translations = {**model.translations.get(model.default_language, {}), **model.translations.get(language, {})}
    values = task.sample.values if task.sample else {}
    return answer({"fields": merge_fields(values, translations), "filters": list(FILTERS),
                   "links": sorted(task.links)})


def render_video(task: Task, found: Checked) -> tuple[dict[str, Any], bytes]:
    """The preview video rendered small; its files' bytes one after another, their sizes in ``files``."""
    timeline = video_timeline(found, task.links)
    cache_dir = task.args.get("cache_dir")
    folder = Path(task.args["work_dir"])  # the service's (mode 0700): removed by it even if this worker is killed
    try:
        cache = SegmentCache(cache_dir, max_bytes=CACHE_BYTES) if cache_dir is not None else None
        try:
            render(timeline, folder / "out", engine="fast", cache=cache, fonts_dir=task.fonts_dir)
        except BillcastError as exc:
            return answer({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, 500)
        parts = {name: (folder / "out" / name).read_bytes() for name in FILES}
    finally:
        shutil.rmtree(folder / "out", ignore_errors=True)  # removed as soon as it is read
    return answer({"files": {name: len(data) for name, data in parts.items()}, "size": list(timeline.size),
                   "duration": timeline.duration}, 200, b"".join(parts.values()))


def handle(task: Task) -> tuple[dict[str, Any], bytes]:
    """Do ``task``: the worker's handler."""
    if task.op == "stats":
        return answer(dict(_made))
    found = checked(task)
    if task.op == "check":
        return answer(result(found))
    if task.op == "fields":
        return fields(task, found)
    if task.op == "translations":
        if found.board is None or task.sample is None:
            return answer(result(found), 422)
        board, values = found.board, task.sample.values
        return answer(_grids.get(task.key, lambda: translation_grid(board, values, task.links, task.fonts_dir)))
    planned = preview_plan(found)
    if planned is None or found.board is None:
        return answer(result(found), 422)
    if task.op == "frame":
        return frame(task, found)
    if task.op == "layers":
        return answer(layer_json(planned.timeline, found.board))
    if task.op == "render":
        return render_video(task, found)
    raise ValueError(f"no such task: {task.op}")
