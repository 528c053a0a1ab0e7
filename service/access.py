"""What the service logs of each request: one record a person can grep, with nothing personal in it.

Each request gets an id (the caller's ``X-Request-Id`` when it is a sane one,
else a new one), echoed back in the answer. Its record names the method, the
route (the URL rule, ``/pay/<token>``: never the path, which holds the token),
the status and the duration, and, where the URL holds a token, a short keyed
hash of it (HMAC with the session secret, 8 hex digits) so one recipient's
requests can be followed without the link. No client address, no query
string, no header is logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from types import TracebackType

from flask import Response, g, request

from .context import service

log = logging.getLogger("billcast.access")
errors_log = logging.getLogger("billcast.service")

HEADER = "X-Request-Id"
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,127}")
_PAGE_TOKEN = re.compile(r"r/([A-Za-z0-9_-]{1,128})(?:/|$)")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def token_hash(secret: bytes, token: str) -> str:
    """8 hex digits of HMAC-SHA256: the same token gives the same hash, and the hash gives nothing back."""
    return hmac.new(secret, token.encode("utf-8", "replace"), "sha256").hexdigest()[:8]


def hashed(token: str) -> str:
    """The current app's hash of a token, for log lines that need to follow one recipient."""
    return token_hash(service().settings.session_secret, token)


def request_id() -> str:
    return str(g.get("request_id") or "-")


def url_token() -> str | None:
    """The token in the URL, if the route has one: ``<token>``, or a published page's ``r/<token>/...``."""
    args = request.view_args or {}
    token = args.get("token")
    if token is None and isinstance(args.get("path"), str):
        match = _PAGE_TOKEN.match(args["path"])
        token = match.group(1) if match else None
    return token if isinstance(token, str) else None


def route() -> str:
    """The URL rule that matched (``/pay/<token>``), or ``-`` when none did."""
    return request.url_rule.rule if request.url_rule is not None else "-"


def start() -> None:
    """Before each request: its id and its start."""
    given = request.headers.get(HEADER, "")
    g.request_id = given if SANE_ID.fullmatch(given) else secrets.token_hex(16)
    g.started = time.perf_counter()


def fields(status: int | None = None) -> dict[str, object]:
    """The request's record: what is logged of it, and nothing else."""
    token = url_token()
    started = g.get("started")
    return {
        "request_id": request_id(),
        "method": request.method if request.method in METHODS else "OTHER",
        "route": route(),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
        "token_hash": hashed(token) if token else None,
        "redact": (token,) if token else (),
    }


def finish(response: Response) -> Response:
    """After each request (errors included): the id echoed back, one record logged."""
    response.headers[HEADER] = request_id()
    record = fields(response.status_code)
    log.info("%s %s %s %.1f ms", record["method"], record["route"], record["status"], record["duration_ms"] or 0.0,
             extra=record)
    return response


def log_exception(exc_info: tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
                  ) -> None:
    """An unhandled error, by route and request id (Flask's own line would name the path, token and all)."""
    record = fields(500)
    kind = exc_info[0].__name__ if exc_info[0] is not None else "error"
    errors_log.error("unhandled %s in %s %s", kind, record["method"], record["route"], exc_info=exc_info,
                     extra=record)
