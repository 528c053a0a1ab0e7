"""What the debtor's own forms (opt-out, dispute) share: a small body, and no posting from other sites.

These forms need no sign-in: the unguessable token in the path is the
credential, and only a POST changes anything (a mail scanner that follows a
link with GET changes nothing). A browser posting from another site is refused
all the same (``Sec-Fetch-Site``, else ``Origin``), so a page elsewhere cannot
make a visitor's browser act on a link it has seen. RFC 8058's one-click POST
comes from a mail provider's server, not a browser, and is checked by the
opt-out itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from typing import Any

from flask import Response, abort, request, url_for

from billcast.microsite import origin, page_link

from .context import Found, service
from .pay_pages import local, render

MAX_FORM_BYTES = 16 * 1024  # an opt-out is a few bytes, a dispute at most 500 characters (2 KB of UTF-8)


def limit_body() -> None:
    """Refuse a body over :data:`MAX_FORM_BYTES` (413) before anything parses it."""
    request.max_content_length = MAX_FORM_BYTES


def _own_origins() -> set[str]:
    origins = {origin(request.host_url)}
    for campaign in service().campaigns:
        origins.update(origin(url) for url in (campaign.public_url, campaign.pay_url))
    return origins


def from_another_site() -> bool:
    """Whether a browser sent this POST from a page of another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    sent = request.headers.get("Origin")
    if sent is None or sent == "null":  # no-referrer pages post with Origin: null; old clients send none
        return False
    parts = urlsplit(sent)
    return f"{parts.scheme}://{parts.netloc}" not in _own_origins()


def refused(status: int, reason: str) -> Response:
    return Response(f"{reason}\n", status, mimetype="text/plain", headers={"Cache-Control": "no-store"})


def found_or_404(token: str) -> Found:
    """The recipient of ``token``; else a plain 404, the same for a token that never was and one that expired."""
    found = service().find(token)
    if found is None:
        abort(refused(404, "Not Found"))
    return found


def own_page(found: Found, template: str, endpoint: str, status: int = 200, **context: Any) -> Response:
    """One of these forms' pages in the recipient's language: it posts to ``endpoint``, links back to the page."""
    token = found.recipient.token
    return render(template, status, found, action=url_for(endpoint, token=token),
                  page=page_link(found.campaign.public_url, token), **context, **local(found))
