"""The studio's plumbing that every one of its routes shares: the blueprint and its guards, its folders
from the app's config, its per-app state, and what a request about an editor's text carries.

Guards: the admin token on every route, and on every POST the session's CSRF
token (``X-CSRF-Token``) and no foreign ``Origin``. Folders, read at each request:
``BILLCAST_STORYBOARDS`` (default: the packaged storyboards), ``BILLCAST_SAMPLES``
(default: the packaged examples), ``BILLCAST_STUDIO_ASSETS`` (the studio's
assets folder, where uploads go; default: the packaged assets, read only) and
``BILLCAST_STUDIO_CACHE`` (the preview videos' segment cache).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, request, session

from billcast.jobs.jail import Limits
from billcast.jobs.links import recipient_links
from billcast.jobs.storyboard_check import Problem
from billcast.renderer import default_cache_dir, packaged

from .auth import admin_required
from .context import service
from .studio_assets import AssetFolder
from .studio_check import Customer, RecordProblem, load_samples, pasted_customer, problem_json
from .studio_files import StoryboardFolder, text_digest
from .studio_tasks import Task
from .studio_worker import Busy, Pool, Renders, run_task
from .studio_yaml import Editor

blueprint = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
CSRF_KEY = "studio_csrf"
MAX_TEXT = 256 * 1024
PREVIEW_TOKEN = "StudioPreviewT0ken_000"


@dataclass
class Studio:
    """What the studio keeps between requests in one process: its worker processes and caches, never the
    state of record."""

    editor: Editor = field(default_factory=Editor)
    _samples: tuple[tuple, tuple[Customer, ...]] = ((), ())
    _pool: Pool | None = None
    _renders: Renders | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pool(self) -> Pool:
        """The workers that check and draw (started on first use, ``studio_workers`` of them)."""
        with self._lock:
            if self._pool is None:
                self._pool = Pool(service().settings.studio_workers, **_worker_settings())
            return self._pool

    def renders(self) -> Renders:
        """The worker that renders preview videos, one at a time."""
        with self._lock:
            if self._renders is None:
                self._renders = Renders(**_worker_settings())
            return self._renders

    def close(self) -> None:
        """End the worker processes now (the next request starts them again)."""
        with self._lock:
            for made in (self._pool, self._renders.pool if self._renders else None):
                if made is not None:
                    made.close()

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


def assets() -> AssetFolder:
    """The studio's assets: its own folder (writable, first filled with the packaged assets), or the
    packaged ones, read only."""
    configured = current_app.config.get("BILLCAST_STUDIO_ASSETS")
    folder = AssetFolder(Path(configured), writable=True) if configured else AssetFolder(packaged("assets"))
    folder.ensure()
    return folder


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


# --- guards -----------------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(CSRF_KEY)
    given = request.headers.get("X-CSRF-Token") or ""
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
                return json_response({"error": "The page's security token is missing or out of date: "
                                               "reload the page."}, 403)
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


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    """JSON in the order it was built (a storyboard's keys, colours and texts keep the order they are written in)."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype="application/json")


def live(name: str) -> Path:
    """The live file of storyboard ``name``, or 404."""
    path = storyboards().path(name)
    if path is None:
        abort(404)
    return path


def body() -> dict[str, Any]:
    """The request's JSON object ({} when it is not one)."""
    found = request.get_json(silent=True)
    return found if isinstance(found, dict) else {}


# --- what a request about the editor's text carries ---------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """The editor's text, and whom and in which language to check and preview it for."""

    text: str
    customer: Customer | None
    language: str

    def key(self, name: str, *extra: Any) -> tuple:
        return (name, text_digest(self.text), self.customer.key if self.customer else "", self.language, *extra)


class BadAsk(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("bad request")
        self.response = response


def checked_text(text: Any) -> str:
    """A storyboard's text from a request, or :class:`BadAsk` (400 not text, 413 too long)."""
    if not isinstance(text, str):
        raise BadAsk(json_response({"error": "expected JSON with the storyboard's text"}, 400))
    text = text.replace("\r\n", "\n")
    if len(text.encode("utf-8")) > MAX_TEXT:
        raise BadAsk(json_response({"error": f"a storyboard may be at most {MAX_TEXT // 1024} KB"}, 413))
    return text


def ask() -> Ask:
    """The text, the customer (a sample's key, or a pasted record) and the language of this request."""
    given = body()
    text = checked_text(given.get("text"))
    language = given.get("language") if isinstance(given.get("language"), str) else ""
    record = given.get("record")
    if isinstance(record, str) and record.strip():
        try:
            customer: Customer | None = pasted_customer(record)
        except RecordProblem as exc:
            raise BadAsk(json_response({"ok": False, "errors": [], "record_errors": exc.problems}, 422)) from None
    else:
        people = samples()
        key = given.get("customer")
        customer = next((s for s in people if s.key == key), None) or (people[0] if people else None)
    return Ask(text=text, customer=customer, language=language[:35])


def _worker_settings() -> dict[str, Any]:
    """What every studio worker is started with: its queue, its memory and when it stops for the host."""
    settings = service().settings
    return {"queue": settings.studio_queue, "memory_mb": settings.studio_memory_mb,
            "yield_percent": settings.studio_yield_percent}


def limits(render: bool = False) -> Limits:
    """What one check or frame (or, with ``render``, one preview render) may use: the studio's settings."""
    settings = service().settings
    seconds = settings.studio_render_seconds if render else settings.studio_check_seconds
    return Limits(cpu_seconds=seconds, wall_seconds=seconds, memory_mb=settings.studio_memory_mb)


def task(name: str, question: Ask, op: str, **args: Any) -> Task:
    """What the worker is asked to do with the asked text (its check cached there by text, customer,
    language and the assets' state)."""
    folder = assets()
    return Task(op=op, key=question.key(name, folder.stamp()), name=name, text=question.text,
                sample=question.customer.sample if question.customer else None, language=question.language,
                links=preview_links(), assets_dir=folder.root, fonts_dir=folder.fonts(), args=args)


def worked(name: str, question: Ask, op: str, problem_status: int = 422, **args: Any) -> tuple[dict[str, Any], bytes]:
    """``op`` done on the asked text by a studio worker; a limit hit is a problem answered ``problem_status``."""
    return run_task(studio().pool(), task(name, question, op, **args), limits(), "checking", problem_status)


def answered(meta: dict[str, Any], data: bytes, mimetype: str = "image/jpeg") -> Response:
    """A worker's answer as the response: its bytes (a frame), else its JSON."""
    if data:
        return Response(data, status=meta["status"], mimetype=mimetype, headers=meta.get("headers") or {})
    return json_response(meta["json"], meta["status"])


def busy(exc: Busy) -> Response:
    """503 with ``Retry-After``: the error, and the same as the check's one problem (the editor lists it)."""
    message = f"The studio is busy with other checks and previews: try again in {exc.retry_after} s."
    problem = problem_json(Problem(text=message, line=None, field=None, message=message))
    response = json_response({"ok": False, "errors": [problem], "error": message, "busy": True,
                              "retry_after": exc.retry_after}, 503)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def asked(view: Callable[..., Response]) -> Callable[..., Response]:
    """A view about storyboard ``name`` and the asked text: 404 for no such storyboard, 4xx for a bad ask."""

    @wraps(view)
    def wrapped(name: str) -> Response:
        live(name)
        try:
            return view(name, ask())
        except BadAsk as exc:
            return exc.response
        except Busy as exc:
            return busy(exc)

    return wrapped
