"""The beacon's fast path: a well-formed ``POST /e/<token>`` answered in front of Flask, in plain WSGI.

Beacons are the service's busiest route by far (a page sends up to eight), and
Flask's request machinery (contexts, the session, routing over every route,
the hooks) cost more CPU than the beacon's own work. :class:`BeaconFront` sits
between the server (and ProxyFix) and the Flask app: a POST to ``/e/<token>``
with a sane token, a declared length within the limit, a ``text/plain`` or
``application/json`` body in UTF-8 and a good beacon in it is recorded with
:func:`~billcast.service.events.take` and answered here, with the headers
Flask would give it (CORS, ``no-store``, the app's security headers, the
request id) and the same access record. Anything else, a refusal included,
goes on to the Flask app with its body as read, and is answered there exactly
as before.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from . import access, events

HeaderList = list[tuple[str, str]]
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ROUTE = "/e/<token>"
_CHARSET = re.compile(r"\s*charset\s*=\s*\"?utf-?8\"?\s*", re.IGNORECASE)
_STATUS = {204: "204 NO CONTENT", 429: "429 TOO MANY REQUESTS", 500: "500 INTERNAL SERVER ERROR",
           503: "503 SERVICE UNAVAILABLE"}


class BeaconFront:
    """WSGI middleware: good beacons answered without Flask's request machinery; every other request to ``app``."""

    def __init__(self, flask_app: Flask, app: Wsgi, headers: Iterable[tuple[str, str]], hsts: str) -> None:
        self.app = app
        self.service = flask_app.extensions["billcast"]
        self.origins = events.page_origins(flask_app)
        self.secret = self.service.settings.session_secret
        self.headers = [("Vary", "Origin"), ("Cache-Control", "no-store")]
        self.security = list(headers)
        self.hsts = hsts

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith("/e/"):
            return self.app(environ, start_response)
        started = time.perf_counter()
        token, length = path[3:], environ.get("CONTENT_LENGTH", "")
        if not (events.TOKEN.fullmatch(token) and length.isdigit() and int(length) <= events.MAX_BODY
                and _plain_utf8(environ.get("CONTENT_TYPE", ""))):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(length))
        try:
            event = events.parse_beacon(body)
        except events.BeaconError:   # Flask's view says what is wrong, from the body as read
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if access.SANE_ID.fullmatch(given) else secrets.token_hex(16)
        record = {"request_id": request_id, "method": "POST", "route": ROUTE,
                  "token_hash": access.token_hash(self.secret, token), "redact": (token,)}
        try:
            taken = events.take(self.service, token, event, environ.get("REMOTE_ADDR") or "",
                                environ.get("HTTP_USER_AGENT", ""))
        except Exception:  # a bug: logged as Flask's handler would, answered as its JSON 500
            access.errors_log.exception("unhandled error in POST %s", ROUTE, extra={**record, "status": 500})
            taken = events.Taken(500, "Internal Server Error")
        return self._answer(environ, start_response, taken, record, started)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any], taken: events.Taken,
                record: dict[str, Any], started: float) -> list[bytes]:
        headers: HeaderList = []
        body = b""
        if taken.error is not None:
            body = (json.dumps({"error": taken.error, "status": taken.status}, ensure_ascii=False) + "\n").encode()
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            if taken.retry_after is not None:
                headers.insert(0, ("Retry-After", str(taken.retry_after)))
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin in self.origins:
            headers.append(("Access-Control-Allow-Origin", origin))
        headers += [*self.headers, ("X-Request-Id", record["request_id"]), *self.security]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", self.hsts))
        start_response(_STATUS[taken.status], headers)
        duration = round((time.perf_counter() - started) * 1000, 1)
        access.log.info("POST %s %s %.1f ms", ROUTE, taken.status, duration,
                        extra={**record, "status": taken.status, "duration_ms": duration})
        return [body] if body else []


def _plain_utf8(content_type: str) -> bool:
    """``text/plain`` or ``application/json``, with no parameter but a UTF-8 charset: what pages send."""
    kind, _, params = content_type.partition(";")
    return kind.strip().lower() in events.MEDIA_TYPES and (not params or _CHARSET.fullmatch(params) is not None)

