"""The storyboard studio: marketing edits, checks and previews storyboards in the browser.

``/studio/`` lists the storyboards and starts new ones; ``/studio/<name>`` edits
one, visually (point at a layer on the preview, drag it, change it in the
properties panel, retime it on the timeline, fill in translations, place
uploaded images) or as YAML in the code view, with its problems, a preview for
a sample or pasted customer in any language, a small preview video, and the
history of its saves. Everything is behind the admin token; every POST also
carries the session's CSRF token. The routes live in ``studio_preview`` (what
the text looks like), ``studio_saving`` (changes and documents) and
``studio_library`` (assets); their shared plumbing in ``studio_web``.

Pages are rendered from files with autoescaping; a storyboard's text reaches
them only as data, and only the renderer's sandbox ever runs it as a template.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from flask import Response, abort, current_app, render_template, request, send_file, url_for

from billcast.microsite import static_dir
from billcast.renderer import StoryboardError, parse_storyboard

from . import studio_library, studio_preview, studio_saving  # noqa: F401 (their routes join the blueprint)
from .studio_check import default_sample
from .studio_files import StoryboardFolder, text_digest
from .studio_saving import starters
from .studio_web import CSP, assets, blueprint, csrf_token, live, route, samples, storyboards, studio

__all__ = ["CSP", "blueprint"]

STATIC = Path(__file__).parent / "static" / "studio"
STUDIO_STATIC = {"studio.css": "text/css", "THIRD_PARTY_LICENSES.txt": "text/plain; charset=utf-8",
                 **{f"{module}.js": "text/javascript" for module in ("studio", "code", "dom", "doc", "stage", "props",
                                                                     "timeline", "layers", "grid", "library", "panels",
                                                                     "index")}}
BRAND_STATIC = {"NotoSans-Regular.ttf": "fonts", "NotoSans-Bold.ttf": "fonts", "logo.png": "", "icon.png": ""}


# --- pages -----------------------------------------------------------------------------------------


def _summary(folder: StoryboardFolder, name: str) -> dict[str, Any]:
    """What the list shows of one storyboard, read from its live file."""
    text = folder.read(name)
    info: dict[str, Any] = {"name": name, "saved_at": folder.saved_at(name), "draft": folder.draft(name) is not None,
                            "problems": 0, "description": "", "languages": [], "duration": None, "scenes": 0,
                            "purpose": ""}
    try:
        model = parse_storyboard(text, path=f"{name}.yaml", assets_dir=assets().root).model
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
                 folder=folder.root.name, starters=starters())


@route("/<name>")
def editor(name: str) -> Response:
    live(name)
    folder = storyboards()
    text = folder.read(name)
    draft = folder.draft(name)
    purpose = ""
    try:
        model = parse_storyboard(text, path=f"{name}.yaml", assets_dir=assets().root).model
        languages, purpose = sorted(model.translations), model.purpose
    except StoryboardError:
        languages = []
    people = samples()
    chosen = default_sample(people, purpose or "bill")
    studio().pool().warm()  # the page checks its text as soon as it loads
    return _page("studio/editor.html", name=name, text=draft[0] if draft else text, draft=draft,
                 base=text_digest(text), saved_at=folder.saved_at(name), history=folder.history(name),
                 samples=people, chosen=chosen.key if chosen else "", languages=languages,
                 assets_writable=assets().writable)


# --- the studio's own scripts, styles and brand files -----------------------------------------------


def _static_url(filename: str) -> str:
    path = _static_path(filename)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path else "0"
    return url_for("studio.static_file", filename=filename, v=digest)


def _static_path(filename: str) -> Path | None:
    if filename in STUDIO_STATIC:
        return STATIC / filename
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
