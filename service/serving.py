"""Local serving of a campaign's store at its ``public_url``, with the headers a CDN would add.

For the demo and for trying a campaign out: a folder store is served from disk
with range requests (video seeking) and conditional requests; any other store is
read through its interface. Each object goes out with the Content-Type and
Cache-Control it was published with; pages also get their Content-Security-Policy
as a header, where ``frame-ancestors`` (which a ``<meta>`` cannot carry) is added.
"""

from __future__ import annotations

import html
import os
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, request
from werkzeug.wsgi import wrap_file

from billcast.jobs.store import ObjectInfo, ObjectNotFound, ObjectStore

from .context import service

blueprint = Blueprint("serving", __name__)
# What a store holds for visitors: recipients' folders and the shared page files. The rest of a store
# (the shared segment cache, cache/segments/, whose frames are personal) is never served.
SERVED = ("r/", "static/")
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
        if not key.startswith(SERVED):
            continue
        store = service().store(campaign)
        try:
            info = store.head(key)
        except ValueError:  # not a key the store could hold (.., reserved names): nothing there
            continue
        if info is not None:
            return store, key, info
    return None


def _csp(head: bytes) -> str | None:
    match = _META_CSP.search(head)
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
    try:
        local = store.open_local(key)  # opened once, following no link: what is checked is what is sent
        if local is None:
            body = store.get(key)
    except ObjectNotFound:  # deleted (or replaced by a link) since it was looked up
        abort(404)
    if local is not None:
        st = os.fstat(local.fileno())
        head = os.pread(local.fileno(), 4096, 0)
        response = Response(wrap_file(request.environ, local), mimetype=info.content_type,
                            direct_passthrough=True)
        response.content_length = st.st_size
        response.last_modified = datetime.fromtimestamp(int(st.st_mtime), timezone.utc)
        response.set_etag(f"{st.st_mtime_ns:x}-{st.st_size:x}")
        response = response.make_conditional(request.environ, accept_ranges=True, complete_length=st.st_size)
    else:
        head = body[:4096]
        response = Response(body, mimetype=info.content_type)
    response.headers["Content-Type"] = info.content_type
    response.headers["Cache-Control"] = info.cache_control
    if info.content_type.startswith("text/html"):
        csp = _csp(head)
        if csp:
            response.headers["Content-Security-Policy"] = csp
    return response
