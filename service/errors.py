"""Error answers: a short page in the pay pages' style and the reader's language, or JSON for the API.

The page's language is the recipient's (their published page's ``lang``) when
the URL names a known token, else the browser's best match among the
catalogues' languages, else English; the texts are the ``error_*`` keys of the
page catalogues (``microsite/catalogs``). The API's routes (beacons, webhooks,
the studio's API, health) and callers that prefer JSON get
``{"error": ..., "status": ..., "request_id": ...}``. Neither says more than
the status (and the view's own words where it gave some, ``abort(400, "option:
must be one of ...")``): no exception text, no path.
"""

from __future__ import annotations

import json
import logging
import re

from babel import Locale, UnknownLocaleError
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from billcast.microsite import Messages, load_catalogs

from . import access
from .context import service
from .pay_pages import render

log = logging.getLogger("billcast.service")

API_PREFIXES = ("/e/", "/stripe/", "/studio/api", "/healthz", "/readyz")
PAGES = (400, 404, 405, 410, 413, 429, 500)  # the statuses with their own texts; others borrow 400's or 500's
_LANG = re.compile(rb'<html[^>]*\blang="([A-Za-z]{2,3})(?:-[A-Za-z0-9-]+)?"')


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, answer)


def wants_json() -> bool:
    """The API's routes, requests that send JSON, and callers that rank JSON above HTML."""
    if request.path.startswith(API_PREFIXES) or request.is_json:
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def answer(exc: HTTPException) -> Response | HTTPException:
    """The error as JSON or as a page, with the headers its status needs (Allow, Retry-After)."""
    code = exc.code or 500
    if code < 400:
        return exc  # redirects are not errors
    detail = exc.description if exc.description != type(exc).description else None  # a view's own words
    if wants_json():
        body = {"error": exc.name, "status": code, "request_id": access.request_id()}
        if detail:
            body["detail"] = detail
        response = Response(json.dumps(body) + "\n", code, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
    else:
        response = page(code, detail)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


def page(code: int, detail: str | None = None) -> Response:
    """The error page in the reader's language (``detail``, a view's own words on what was wrong, as given)."""
    messages = load_catalogs().messages(language())
    key = code if code in PAGES else (500 if code >= 500 else 400)
    return render("pay/error.html", code, None, lang=messages.language, dir=_direction(messages),
                  title=messages.plain(f"error_{key}_title"), text=messages.plain(f"error_{key}_text"),
                  reference=messages.text("error_reference", code=str(code), reference=access.request_id()),
                  detail=detail, tone="error" if code >= 500 else "warn")


def language() -> str:
    """The recipient's language where the URL names one, else the browser's best, else English."""
    available = list(load_catalogs().languages)
    token = access.url_token()
    if token is not None:
        published = _published_language(token)
        if published in available:
            return published
    return request.accept_languages.best_match(available) or "en"


def _published_language(token: str) -> str | None:
    """The ``lang`` of a known recipient's published page; None when there is none to read."""
    try:
        found = service().find(token)
        if found is None:
            return None
        head = found.store.get(f"r/{token}/index.html")[:1024]
    except Exception as exc:  # noqa: BLE001 - an error page must not fail for want of a language
        log.info("error page: no language for token %s: %s", access.hashed(token), type(exc).__name__)
        return None
    match = _LANG.search(head)
    return match.group(1).decode("ascii").lower() if match else None


def _direction(messages: Messages) -> str:
    try:
        return "rtl" if Locale.parse(messages.language).character_order == "right-to-left" else "ltr"
    except (ValueError, UnknownLocaleError):
        return "ltr"
