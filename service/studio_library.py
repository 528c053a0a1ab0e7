"""The studio's asset library: list the images and audio beds storyboards can name, upload new ones
(checked by content, see ``studio_assets``), serve them to the page, and delete the unused ones."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response, abort, request, send_file, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from .studio_assets import MAX_UPLOAD, TYPES, AssetRefused, asset_users
from .studio_web import assets, body, json_response, route, storyboards


def _texts() -> dict[str, str]:
    """Every storyboard's live text and draft, by name (a draft as ``name (draft)``)."""
    folder = storyboards()
    texts: dict[str, str] = {}
    for name in folder.names():
        texts[name] = folder.read(name)
        draft = folder.draft(name)
        if draft is not None:
            texts[f"{name} (draft)"] = draft[0]
    return texts


def _asset_json(asset: Any, texts: dict[str, str]) -> dict[str, Any]:
    out = asdict(asset)
    out["url"] = url_for("studio.asset_file", path=asset.path)
    out["users"] = sorted({u["storyboard"] for u in asset_users(asset.path, texts)})
    return out


@route("/_assets")
def asset_list() -> Response:
    """The library: every image and audio bed, what each is, and which storyboards use it."""
    folder = assets()
    texts = _texts()
    return json_response({"writable": folder.writable, "assets": [_asset_json(a, texts) for a in folder.list()]})


@route("/_assets", methods=("POST",))
def asset_upload() -> Response:
    """Upload one file (multipart field ``file``): 201 with the stored asset, or 413/415/422 with why."""
    request.max_content_length = MAX_UPLOAD
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        return json_response({"error": f"uploads may be at most {MAX_UPLOAD // (1024 * 1024)} MB"}, 413)
    if upload is None:
        return json_response({"error": "expected a file in the form field 'file'"}, 400)
    data = upload.stream.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return json_response({"error": f"uploads may be at most {MAX_UPLOAD // (1024 * 1024)} MB"}, 413)
    try:
        asset = assets().add(upload.filename or "", data)
    except AssetRefused as exc:
        return json_response({"error": str(exc)}, exc.status)
    return json_response({"ok": True, "asset": _asset_json(asset, {})}, 201)


@route("/_assets/delete", methods=("POST",))
def asset_delete() -> Response:
    """Delete an asset (``{path}``) that no storyboard or draft names; 409 with the users otherwise."""
    rel = body().get("path")
    if not isinstance(rel, str):
        return json_response({"error": "expected the asset's path"}, 400)
    folder = assets()
    try:
        folder.delete(rel, asset_users(rel, _texts()) if folder.file(rel) else [])
    except AssetRefused as exc:
        return json_response({"error": str(exc), "users": exc.users}, exc.status)
    return json_response({"ok": True})


@route("/_assets/file/<path:path>")
def asset_file(path: str) -> Response:
    """An asset's bytes, for the library's thumbnails and players (only images and audio, by extension)."""
    found = assets().file(path)
    if found is None:
        abort(404)
    response = send_file(found, mimetype=TYPES[found.suffix.lower()], conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
