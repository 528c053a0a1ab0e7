"""The studio's views of the editor's text: its problems, a frame at any time (also of a drag not yet
written), the planned layers to point at, the merge fields, the translations grid, the preview video,
and the storyboard's JSON Schema for the code view. The work itself is done by a studio worker
(``studio_tasks``, run under limits by ``studio_worker``); these views only ask and answer."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from typing import Any

from flask import Response, abort, send_file, url_for

from billcast.jobs.storyboard_check import fit
from billcast.renderer import StoryboardModel

from .studio_check import VIDEO_BOX
from .studio_tasks import FILES
from .studio_worker import job_json
from .studio_web import (Ask, answered, asked, body, json_response, limits, live, route, segment_cache_dir, studio, task,
                         worked)


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
    return answered(*worked(name, question, "check", problem_status=200))


@route("/<name>/frame", methods=("POST",))
@asked
def frame(name: str, question: Ask) -> Response:
    """The frame at ``t`` of the editor's text (or of it with ``ops`` applied, a drag's frame), as JPEG,
    ``width`` pixels wide at most; 422 with the problems otherwise."""
    given = body()
    return answered(*worked(name, question, "frame", t=given.get("t", 0), width=given.get("width"),
                            ops=given.get("ops")))


@route("/<name>/layers", methods=("POST",))
@asked
def layers(name: str, question: Ask) -> Response:
    """The planned layers of every scene, topmost first, with their boxes in the preview frame's pixels:
    what a click on the preview hits."""
    return answered(*worked(name, question, "layers"))


@route("/<name>/fields", methods=("POST",))
@asked
def fields(name: str, question: Ask) -> Response:
    """What a text can show for the chosen customer (each with its value), the filters that format it,
    and the links a QR code can name."""
    return answered(*worked(name, question, "fields"))


@route("/<name>/translations", methods=("POST",))
@asked
def translations(name: str, question: Ask) -> Response:
    """Every translation in every language, with the missing ones and the ones that overflow their box
    when drawn for the chosen customer."""
    return answered(*worked(name, question, "translations"))


# --- the preview video --------------------------------------------------------------------------------


@route("/<name>/video", methods=("POST",))
@asked
def video(name: str, question: Ask) -> Response:
    """Start rendering the editor's text small (or find the render already made); poll the status URL."""
    meta, _ = worked(name, question, "check", problem_status=422)
    found = meta["json"]
    if not found.get("ok") or "preview" not in found or question.customer is None:
        return json_response(found, 422)
    pasted = question.customer.key.startswith("p")
    cache = None if pasted else segment_cache_dir()
    size = list(fit(tuple(found["doc"]["size"]), VIDEO_BOX))
    status = studio().renders().start(task(name, question, "render", cache_dir=cache), limits(render=True), cache,
                                      size, found["preview"]["duration"])
    return json_response(_job(name, status), 202)


def _job(name: str, status: dict[str, Any]) -> dict[str, Any]:
    out = job_json(status)
    out["status_url"] = url_for("studio.video_status", name=name, job=status["job"])
    if status["status"] == "done":
        out["files"] = {kind: url_for("studio.video_file", name=name, job=status["job"], file=kind) for kind in FILES}
    return out


def _job_or_404(name: str, job: str) -> dict[str, Any]:
    live(name)
    found = studio().renders().status(job, segment_cache_dir())
    if found is None or found["name"] != name:
        abort(404)
    return found


@route("/<name>/video/<job>")
def video_status(name: str, job: str) -> Response:
    return json_response(_job(name, _job_or_404(name, job)))


@route("/<name>/video/<job>/<file>")
def video_file(name: str, job: str, file: str) -> Response:
    _job_or_404(name, job)
    data = studio().renders().file(job, file, segment_cache_dir()) if file in FILES else None
    if data is None:
        abort(404)
    response = send_file(io.BytesIO(data), mimetype=FILES[file], conditional=True,
                         etag=hashlib.sha256(data).hexdigest()[:32], max_age=0, download_name=file)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
