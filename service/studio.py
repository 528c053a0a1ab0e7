"""The storyboard studio: marketing edits, checks and previews storyboards in the browser.

``/studio/`` lists the storyboards; ``/studio/<name>`` edits one, with its
problems (each with its line), a preview frame for a sample or pasted customer
and language at any time, a small preview video with its captions and calls to
action, and the history of its last saves. Everything is behind the admin
token; every POST also carries the session's CSRF token (``X-CSRF-Token``).

The folders come from the app's config, read at each request:
``BILLCAST_STORYBOARDS`` (default: the repository's ``storyboards/``),
``BILLCAST_SAMPLES`` (default: ``examples/``) and ``BILLCAST_STUDIO_CACHE`` (the
preview videos' segment cache; default: ``~/.cache/billcast/studio-segments``).

Pages are rendered from files with autoescaping; a storyboard's text reaches
them only as data, and only the renderer's sandbox ever runs it as a template.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import (Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request, send_file,
                   session, url_for)

from billcast.microsite import static_dir
from billcast.jobs.links import recipient_links
from billcast.jobs.storyboard_check import Checked
from billcast.renderer import StoryboardError, default_cache_dir, packaged, parse_storyboard

from .auth import admin_required
from .context import service
from .studio_check import (Checks, Customer, RecordProblem, check, default_sample, frame_jpeg, load_samples,
                           pasted_customer, preview_plan, problem_json, video_timeline)
from .studio_files import Conflict, StoryboardFolder, text_digest
from .studio_video import FILES, VideoJobs

__all__ = ["CSP", "blueprint"]

blueprint = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
CSRF_KEY = "studio_csrf"
MAX_TEXT = 256 * 1024
PREVIEW_TOKEN = "StudioPreviewT0ken_000"
STATIC = Path(__file__).parent / "static"
STUDIO_STATIC = {"studio.css": "text/css", "editor.js": "text/javascript"}
BRAND_STATIC = {"NotoSans-Regular.ttf": "fonts", "NotoSans-Bold.ttf": "fonts", "logo.png": "", "icon.png": ""}


# --- the studio's state: one per app --------------------------------------------------------------


@dataclass
class Studio:
    checks: Checks = field(default_factory=Checks)
    videos: VideoJobs = field(default_factory=VideoJobs)
    _samples: tuple[tuple, tuple[Customer, ...]] = ((), ())

    def samples(self, folder: Path) -> tuple[Customer, ...]:
        """The sample customers, read again only when a file in the folder changed."""
        files = [folder / "customers.jsonl", *sorted(folder.glob("*.json"))]
        stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files if p.is_file())
        if self._samples[0] != stamp:
            self._samples = (stamp, load_samples(folder))
        return self._samples[1]


@blueprint.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    app.extensions["billcast_studio"] = Studio()


def studio() -> Studio:
    return current_app.extensions["billcast_studio"]


def storyboards() -> StoryboardFolder:
    return StoryboardFolder(Path(current_app.config.get("BILLCAST_STORYBOARDS") or packaged("storyboards")))


def samples() -> tuple[Customer, ...]:
    return studio().samples(Path(current_app.config.get("BILLCAST_SAMPLES") or packaged("examples")))


def segment_cache_dir() -> Path:
    """Where preview videos keep encoded segments: beside the CLI's cache, not in the repository's tree."""
    configured = current_app.config.get("BILLCAST_STUDIO_CACHE")
    return Path(configured) if configured else default_cache_dir().parent / "studio-segments"


def preview_links() -> dict[str, str]:
    """The links a storyboard's QR codes show: the first campaign's bases, a token that is no one's."""
    campaigns = service().campaigns
    public = campaigns[0].public_url if campaigns else "http://127.0.0.1:8000"
    pay = campaigns[0].pay_url if campaigns else public
    return recipient_links(public, pay, PREVIEW_TOKEN)


# --- guards: the admin token on everything, the CSRF token on every POST ---------------------------


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(CSRF_KEY)
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(given.encode(), str(expected).encode()):
        return False
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def route(rule: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    """A studio route: admin token first, then (for POST) the CSRF token."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST" and not _csrf_ok():
                return _json({"error": "The page's security token is missing or out of date: reload the page."},
                             403)
            return view(*args, **kwargs)

        blueprint.add_url_rule(rule, view.__name__, admin_required(guarded), methods=list(methods))
        return view

    return decorate


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _json(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _live(name: str) -> Path:
    path = storyboards().path(name)
    if path is None:
        abort(404)
    return path


# --- pages -----------------------------------------------------------------------------------------


def _summary(folder: StoryboardFolder, name: str) -> dict[str, Any]:
    """What the list shows of one storyboard, read from its live file."""
    text = folder.read(name)
    info: dict[str, Any] = {"name": name, "saved_at": folder.saved_at(name), "draft": folder.draft(name) is not None,
                            "problems": 0, "description": "", "languages": [], "duration": None, "scenes": 0,
                            "purpose": ""}
    try:
        model = parse_storyboard(text, path=f"{name}.yaml").model
    except StoryboardError as exc:
        info["problems"] = len(getattr(exc, "errors", [exc]))
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict):
            description = data.get("description")
            info["description"] = description if isinstance(description, str) else ""
            translations = data.get("translations")
            info["languages"] = sorted(map(str, translations)) if isinstance(translations, dict) else []
        return info
    info.update(description=model.description, languages=sorted(model.translations) or [model.default_language],
                duration=model.duration, scenes=len(model.scenes), purpose=model.purpose)
    return info


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _page(template: str, **context: Any) -> Response:
    html = render_template(template, csrf=csrf_token(), static=_static_url, when=_when,
                           signout=url_for("auth.signout") if "auth.signout" in current_app.view_functions else None,
                           **context)
    return Response(html, mimetype="text/html")


@route("/")
def index() -> Response:
    folder = storyboards()
    return _page("studio/index.html", boards=[_summary(folder, name) for name in folder.names()],
                 folder=folder.root.name)


@route("/<name>")
def editor(name: str) -> Response:
    _live(name)
    folder = storyboards()
    live = folder.read(name)
    draft = folder.draft(name)
    purpose = ""
    try:
        model = parse_storyboard(live, path=f"{name}.yaml").model
        languages, purpose = sorted(model.translations), model.purpose
    except StoryboardError:
        languages = []
    people = samples()
    chosen = default_sample(people, purpose or "bill")
    return _page("studio/editor.html", name=name, text=draft[0] if draft else live, draft=draft,
                 base=text_digest(live), saved_at=folder.saved_at(name), history=folder.history(name),
                 samples=people, chosen=chosen.key if chosen else "", languages=languages)


# --- reading a request: the text, whom it is for, in which language ---------------------------------


@dataclass(frozen=True)
class Ask:
    text: str
    customer: Customer | None
    language: str

    def key(self, name: str) -> tuple:
        return (name, text_digest(self.text), self.customer.key if self.customer else "", self.language)


class BadAsk(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("bad request")
        self.response = response


def _ask() -> Ask:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise BadAsk(_json({"error": "expected JSON with the storyboard's text"}, 400))
    text = body["text"].replace("\r\n", "\n")
    if len(text.encode("utf-8")) > MAX_TEXT:
        raise BadAsk(_json({"error": f"a storyboard may be at most {MAX_TEXT // 1024} KB"}, 413))
    language = body.get("language") if isinstance(body.get("language"), str) else ""
    record = body.get("record")
    if isinstance(record, str) and record.strip():
        try:
            customer: Customer | None = pasted_customer(record)
        except RecordProblem as exc:
            raise BadAsk(_json({"ok": False, "errors": [], "record_errors": exc.problems}, 422)) from None
    else:
        people = samples()
        key = body.get("customer")
        customer = next((s for s in people if s.key == key), None) or (people[0] if people else None)
    return Ask(text=text, customer=customer, language=language[:35])


def _checked(name: str, ask: Ask) -> Checked:
    links = preview_links()
    return studio().checks.get(ask.key(name), lambda: check(ask.text, name, ask.customer, ask.language, links))


def _result(checked: Checked) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": checked.ok, "errors": [problem_json(p) for p in checked.problems]}
    planned = preview_plan(checked)
    if planned is not None:
        board, timeline = checked.board, planned.timeline
        body["preview"] = {
            "duration": timeline.duration, "fps": timeline.fps, "poster_time": timeline.poster_time,
            "size": list(timeline.size), "locale": timeline.locale, "language": timeline.language, "direction": timeline.direction,
            "scenes": [{"id": s.id, "start": s.start_frame / s.fps, "end": (s.start_frame + s.frames) / s.fps,
                        "line": board.line_of(("scenes", s.index)) if board else None} for s in timeline.scenes],
        }
    return body


def _asked(view: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(view)
    def wrapped(name: str) -> Response:
        _live(name)
        try:
            return view(name, _ask())
        except BadAsk as exc:
            return exc.response

    return wrapped


# --- checking, previewing, saving -------------------------------------------------------------------


@route("/<name>/validate", methods=("POST",))
@_asked
def validate(name: str, ask: Ask) -> Response:
    """Check the editor's text: every problem with its line; with none, what the preview needs."""
    return _json(_result(_checked(name, ask)))


@route("/<name>/frame", methods=("POST",))
@_asked
def frame(name: str, ask: Ask) -> Response:
    """The frame at ``t`` of the editor's text (not the saved file), as JPEG; 422 with the problems otherwise."""
    checked = _checked(name, ask)
    planned = preview_plan(checked)
    if planned is None:
        return _json(_result(checked), 422)
    try:
        t = float((request.get_json(silent=True) or {}).get("t", 0))
    except (TypeError, ValueError):
        t = 0.0
    image, shown = frame_jpeg(planned.timeline, t if t == t else 0.0)  # NaN -> 0
    return Response(image, mimetype="image/jpeg", headers={"X-Frame-Time": f"{shown:.3f}"})


@route("/<name>/save", methods=("POST",))
@_asked
def save(name: str, ask: Ask) -> Response:
    """A valid text replaces the live file (history kept); an invalid one is kept as the draft, the live one untouched."""
    folder = storyboards()
    checked = _checked(name, ask)
    if not checked.ok:
        saved_at = folder.save_draft(name, ask.text)
        return _json(dict(_result(checked), draft={"saved_at": saved_at.isoformat()}), 422)
    body = request.get_json(silent=True) or {}
    base = None if body.get("force") else body.get("base") if isinstance(body.get("base"), str) else None
    try:
        saved = folder.save(name, ask.text, base=base)
    except Conflict as exc:
        return _json({"ok": False, "conflict": True, "error": str(exc), "live": exc.digest}, 409)
    return _json(dict(_result(checked), saved={"changed": saved.changed, "saved_at": saved.time.isoformat(),
                                                "base": saved.digest},
                      history=[_entry(e) for e in folder.history(name)]))


@route("/<name>/draft/discard", methods=("POST",))
def discard(name: str) -> Response:
    _live(name)
    folder = storyboards()
    folder.discard_draft(name)
    live = folder.read(name)
    return _json({"ok": True, "text": live, "base": text_digest(live)})


def _entry(entry: Any) -> dict[str, Any]:
    return {"id": entry.id, "time": entry.time.isoformat(), "added": entry.added, "removed": entry.removed}


@route("/<name>/history")
def history(name: str) -> Response:
    _live(name)
    return _json({"history": [_entry(e) for e in storyboards().history(name)]})


@route("/<name>/history/<entry>")
def history_entry(name: str, entry: str) -> Response:
    _live(name)
    folder = storyboards()
    diff, text = folder.diff(name, entry), folder.version(name, entry)
    if diff is None or text is None:
        abort(404)
    return _json({"id": entry, "diff": diff, "text": text})


# --- the preview video --------------------------------------------------------------------------------


@route("/<name>/video", methods=("POST",))
@_asked
def video(name: str, ask: Ask) -> Response:
    """Start rendering the editor's text small (or find the render already made); poll the status URL."""
    checked = _checked(name, ask)
    if preview_plan(checked) is None or ask.customer is None:
        return _json(_result(checked), 422)
    timeline = video_timeline(checked, preview_links())
    pasted = ask.customer.key.startswith("p")
    job = studio().videos.start(ask.key(name), timeline, None if pasted else segment_cache_dir())
    return _json(_job(name, job), 202)


def _job(name: str, job: Any) -> dict[str, Any]:
    body = job.as_json()
    body["status_url"] = url_for("studio.video_status", name=name, job=job.id)
    if job.status == "done":
        body["files"] = {kind: url_for("studio.video_file", name=name, job=job.id, file=kind) for kind in FILES}
    return body


def _job_or_404(name: str, job_id: str) -> Any:
    _live(name)
    job = studio().videos.get(job_id)
    if job is None or job.key[0] != name:
        abort(404)
    return job


@route("/<name>/video/<job>")
def video_status(name: str, job: str) -> Response:
    return _json(_job(name, _job_or_404(name, job)))


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


# --- the studio's own scripts, styles and brand files -----------------------------------------------


def _static_url(filename: str) -> str:
    path = _static_path(filename)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path else "0"
    return url_for("studio.static_file", filename=filename, v=digest)


def _static_path(filename: str) -> Path | None:
    if filename in STUDIO_STATIC:
        return STATIC / "studio" / filename
    if filename in BRAND_STATIC:
        return static_dir() / BRAND_STATIC[filename] / filename
    return None


@route("/_static/<filename>")
def static_file(filename: str) -> Response:
    path = _static_path(filename)
    if path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype=STUDIO_STATIC.get(filename), conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, max-age=86400" if request.args.get("v") else "no-cache"
    return response
