"""Local serving of a campaign's store at its ``public_url``, with the headers a CDN would add.

For the demo and for trying a campaign out: a folder store is served from disk
with range requests (video seeking) and conditional requests; any other store is
read through its interface. Each object goes out with the Content-Type and
Cache-Control it was published with; pages also get their Content-Security-Policy
as a header, where ``frame-ancestors`` (which a ``<meta>`` cannot carry) is added.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, request, send_file

from billcast.jobs.store import ObjectInfo, ObjectStore

from .context import service

blueprint = Blueprint("serving", __name__)
_META_CSP = re.compile(rb'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')


def _prefix(public_url: str) -> str:
    """The URL path the campaign's objects live under, without slashes at either end."""
    return urlsplit(public_url).path.strip("/")


def _lookup(path: str) -> tuple[ObjectStore, str, ObjectInfo] | None:
    for campaign in service().campaigns:
        prefix = _prefix(campaign.public_url)
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            continue
        key = path[len(prefix):].lstrip("/") if prefix else path
        if not key or key.endswith("/"):
            key += "index.html"
        store = service().store(campaign)
        try:
            info = store.head(key)
        except ValueError:  # not a key the store could hold (.., reserved names): nothing there
            continue
        if info is not None:
            return store, key, info
    return None


def _csp(body: bytes) -> str | None:
    match = _META_CSP.search(body[:4096])
    if not match:
        return None
    return html.unescape(match.group(1).decode("utf-8", "replace")) + "; frame-ancestors 'none'"


@blueprint.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
@blueprint.route("/<path:path>", methods=["GET", "HEAD"])
def serve(path: str) -> Response:
    found = _lookup(path)
    if found is None:
        if path and not path.endswith("/") and _lookup(path + "/") is not None:
            return redirect(request.path + "/", 308)  # r/<token> -> r/<token>/
        abort(404)
    store, key, info = found
    local = store.local_path(key)
    if local is not None and local.is_file():
        response = send_file(local, mimetype=info.content_type, conditional=True, etag=True, max_age=None)
    else:
        response = Response(store.get(key), mimetype=info.content_type)
    response.headers["Content-Type"] = info.content_type
    response.headers["Cache-Control"] = info.cache_control
    if info.content_type.startswith("text/html"):
        body = local.read_bytes() if local is not None else store.get(key)
        csp = _csp(body)
        if csp:
            response.headers["Content-Security-Policy"] = csp
    return response
