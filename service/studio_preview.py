"""The studio's views of the editor's text: its problems, a frame at any time (also of a drag not yet
written), the planned layers to point at, the merge fields, the translations grid, the preview video,
and the storyboard's JSON Schema for the code view."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from typing import Any

from flask import Response, abort, send_file, url_for
from pydantic import ValidationError

from billcast.jobs.storyboard_check import Checked
from billcast.renderer import BillcastError, Storyboard, StoryboardModel, Timeline, plan

from .studio_check import frame_jpeg, preview_plan, problem_json, video_timeline
from .studio_grid import FILTERS, layer_json, merge_fields, translation_grid
from .studio_video import FILES
from .studio_web import (Ask, BadAsk, asked, assets, body, checked, json_response, live, preview_links, route,
                         segment_cache_dir, studio)
from .studio_yaml import EditError, edit_data, parse_ops

THUMB_WIDTHS = (160, 240, 320, 480, 640)


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


@route("/_schema.json")
def schema() -> Response:
    """The storyboard's JSON Schema (what ``billcast schema storyboard`` prints): the code view's
    completion and lint."""
    return json_response(_schema())


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **StoryboardModel.model_json_schema(mode="validation"), "title": "Billcast storyboard"}


@route("/<name>/validate", methods=("POST",))
@asked
def validate(name: str, question: Ask) -> Response:
    """Check the editor's text: every problem with its line; with none, what the preview needs."""
    return json_response(result(checked(name, question)))


def _dragged(found: Checked, ops: Any) -> Timeline:
    """The checked text's plan with boxes moved or resized by ``ops`` (``set`` of a layer's ``box``): a drag's
    frames, not written. Only the boxes change, and the model checks them, so the text's own check stands
    and only the asked language is planned again."""
    planned = preview_plan(found)
    if planned is None or found.board is None:
        raise BadAsk(json_response(result(found), 422))
    try:
        parsed = parse_ops(ops)
        if any(op["op"] != "set" or "box" not in op["path"][-2:] for op in parsed):
            raise EditError("a frame previews moved or resized boxes only: set a layer's box")
        data = edit_data(found.board.model.model_dump(mode="json", exclude_unset=True), parsed)
    except EditError as exc:
        raise BadAsk(json_response({"error": str(exc)}, 400)) from None
    try:
        model = StoryboardModel.model_validate(data)
        board = Storyboard(model, path=found.board.path, lines=found.board.lines, assets_dir=found.board.assets_dir)
        return plan(board, planned.sample.values, preview_links(), size=planned.timeline.size, locale=planned.locale)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadAsk(json_response({"error": f"that box cannot be drawn: {first['msg'].removeprefix('Value error, ')}"},
                                   422)) from None
    except BillcastError as exc:
        raise BadAsk(json_response({"error": f"that box cannot be drawn: {exc}"}, 422)) from None


@route("/<name>/frame", methods=("POST",))
@asked
def frame(name: str, question: Ask) -> Response:
    """The frame at ``t`` of the editor's text (or of it with ``ops`` applied), as JPEG, ``width`` pixels
    wide at most; 422 with the problems otherwise."""
    given = body()
    found = checked(name, question)
    planned = preview_plan(found)
    if planned is None:
        return json_response(result(found), 422)
    timeline = planned.timeline
    if given.get("ops"):
        try:
            timeline = _dragged(found, given["ops"])
        except BadAsk as exc:
            return exc.response
    try:
        t = float(given.get("t", 0))
    except (TypeError, ValueError):
        t = 0.0
    width = given.get("width")
    width = min((w for w in THUMB_WIDTHS if w >= width), default=None) if isinstance(width, int) else None
    image, shown = frame_jpeg(timeline, t if t == t else 0.0, assets().fonts(), width)  # NaN -> 0
    return Response(image, mimetype="image/jpeg", headers={"X-Frame-Time": f"{shown:.3f}"})


@route("/<name>/layers", methods=("POST",))
@asked
def layers(name: str, question: Ask) -> Response:
    """The planned layers of every scene, topmost first, with their boxes in the preview frame's pixels:
    what a click on the preview hits."""
    found = checked(name, question)
    planned = preview_plan(found)
    if planned is None or found.board is None:
        return json_response(result(found), 422)
    return json_response(layer_json(planned.timeline, found.board))


@route("/<name>/fields", methods=("POST",))
@asked
def fields(name: str, question: Ask) -> Response:
    """What a text can show for the chosen customer (each with its value), the filters that format it,
    and the links a QR code can name."""
    found = checked(name, question)
    translations: dict[str, str] = {}
    if found.board is not None:
        model = found.board.model
        planned = preview_plan(found)
        language = planned.timeline.language if planned else model.default_language
        translations = {**model.translations.get(model.default_language, {}), **model.translations.get(language, {})}
    values = question.customer.sample.values if question.customer else {}
    return json_response({"fields": merge_fields(values, translations), "filters": list(FILTERS),
                          "links": sorted(preview_links())})


@route("/<name>/translations", methods=("POST",))
@asked
def translations(name: str, question: Ask) -> Response:
    """Every translation in every language, with the missing ones and the ones that overflow their box
    when drawn for the chosen customer."""
    found = checked(name, question)
    if found.board is None or question.customer is None:
        return json_response(result(found), 422)
    board, values, folder = found.board, question.customer.sample.values, assets()
    grid = studio().grids.get(question.key(name, folder.stamp()),
                              lambda: translation_grid(board, values, preview_links(), folder.fonts()))
    return json_response(grid)


# --- the preview video --------------------------------------------------------------------------------


@route("/<name>/video", methods=("POST",))
@asked
def video(name: str, question: Ask) -> Response:
    """Start rendering the editor's text small (or find the render already made); poll the status URL."""
    found = checked(name, question)
    if preview_plan(found) is None or question.customer is None:
        return json_response(result(found), 422)
    timeline = video_timeline(found, preview_links())
    pasted = question.customer.key.startswith("p")
    job = studio().videos.start(question.key(name, assets().stamp()), timeline,
                                None if pasted else segment_cache_dir(), assets().fonts())
    return json_response(_job(name, job), 202)


def _job(name: str, job: Any) -> dict[str, Any]:
    out = job.as_json()
    out["status_url"] = url_for("studio.video_status", name=name, job=job.id)
    if job.status == "done":
        out["files"] = {kind: url_for("studio.video_file", name=name, job=job.id, file=kind) for kind in FILES}
    return out


def _job_or_404(name: str, job_id: str) -> Any:
    live(name)
    job = studio().videos.get(job_id)
    if job is None or job.key[0] != name:
        abort(404)
    return job


@route("/<name>/video/<job>")
def video_status(name: str, job: str) -> Response:
    return json_response(_job(name, _job_or_404(name, job)))


@route("/<name>/video/<job>/<file>")
def video_file(name: str, job: str, file: str) -> Response:
    found = _job_or_404(name, job)
    if file not in FILES or file not in found.files:
        abort(404)
    data = found.files[file]
    response = send_file(io.BytesIO(data), mimetype=FILES[file], conditional=True,
                         etag=hashlib.sha256(data).hexdigest()[:32], max_age=0, download_name=file)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
