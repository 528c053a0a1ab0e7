"""The pages' engagement beacons: ``POST /e/<token>`` with a few bytes of JSON.

A page sends ``{"kind": "view"}``, ``{"kind": "play"}``, ``{"kind": "progress",
"value": 50}``, ``{"kind": "cta_click", "src": "video"}`` or ``{"kind":
"pay_click", "src": "site"}``, each with ``"s"``, the page's session id (22
random URL-safe characters, one per browser tab), with ``navigator.sendBeacon``
(``text/plain``, so a cross-origin beacon needs no preflight). The body is
checked strictly; a good beacon for a published recipient becomes one ledger
event, one for any other token is answered the same way and dropped, so the
answer tells nothing about which tokens exist.

A view, a play and each progress mark count once per page link and visitor and
once per page link and session (the ledger's unique indexes); a repeat is
answered 204 like a first. The visitor is :func:`visitor_key`: a keyed hash of
the client's address, User-Agent and the UTC day, so a client sending a new
session id each time still counts once a day; the address and User-Agent are
never stored or logged. The rate limit is per page link: at most
``events_per_minute`` events of one token in any sliding minute, counted in the
ledger's events table in the same transaction that records the event, so every
worker and host keeps the one limit (see ``docs/DEPLOY.md``, "Rate limits").
Beacons that are not recorded (bad, unknown or unpublished tokens, repeats) are
not counted.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge

from billcast.jobs.ledger import EVENT_KINDS, VISITOR_CHARS, LedgerError
from billcast.microsite import SOURCES
from billcast.renderer import BillcastError

from .context import Service, service

__all__ = ["MAX_BODY", "Beacon", "BeaconError", "Taken", "blueprint", "page_origins", "parse_beacon", "take",
           "visitor_key"]

blueprint = Blueprint("events", __name__)

MAX_BODY = 4 * 1024  # bytes; a real beacon is under 60
PROGRESS = (25, 50, 75, 100)
CLICKS = ("cta_click", "pay_click")
MEDIA_TYPES = ("text/plain", "application/json")  # sendBeacon with a string sends text/plain
KEYS = ("kind", "value", "src", "s")
WINDOW = timedelta(minutes=1)  # events_per_minute is counted over this sliding window
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")  # what a token in a beacon's URL may look like
_SESSION = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url without padding
_ORIGINS = "billcast.page_origins"  # app.extensions: the origins a beacon's answer may be read from
_VISITOR_KEY = b"billcast beacon visitor\0"  # keeps these hashes apart from other uses of the session secret


class BeaconError(BillcastError):
    """A beacon refused: the HTTP status and what was wrong, worded ``field: problem``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Beacon:
    kind: str
    value: int | None = None
    src: str | None = None
    session: str | None = None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BeaconError(f"body: key {_shown(key)} appears twice")
        seen[key] = value
    return seen


def _no_constant(name: str) -> None:
    raise BeaconError(f"body: {name} is not a JSON number")


def parse_beacon(body: bytes) -> Beacon:
    """The beacon in a request body, or :class:`BeaconError` naming the first thing wrong with it."""
    if not body.strip():
        raise BeaconError('body: is empty; send JSON like {"kind": "view"}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BeaconError("body: is not UTF-8 text") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BeaconError(f"body: is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BeaconError('body: must be a JSON object like {"kind": "view"}')
    unknown = [key for key in data if key not in KEYS]
    if unknown:
        raise BeaconError(f"body: unknown key {_shown(unknown[0])}; a beacon has only {', '.join(KEYS)}")
    if "kind" not in data:
        raise BeaconError(f"kind: is required, one of {', '.join(EVENT_KINDS)}")
    kind = data["kind"]
    if kind not in EVENT_KINDS or not isinstance(kind, str):
        raise BeaconError(f"kind: must be one of {', '.join(EVENT_KINDS)}; got {_shown(kind)}")
    value = data.get("value")
    if kind == "progress":
        if "value" not in data:
            raise BeaconError("value: is required for progress, one of 25, 50, 75, 100")
        if isinstance(value, bool) or not isinstance(value, int) or value not in PROGRESS:
            raise BeaconError(f"value: must be 25, 50, 75 or 100 for progress; got {_shown(value)}")
    elif "value" in data:
        raise BeaconError(f"value: only progress carries a value, not {kind}")
    src = data.get("src")
    if "src" in data:
        if kind not in CLICKS:
            raise BeaconError(f"src: only {' and '.join(CLICKS)} carry a src, not {kind}")
        if not isinstance(src, str) or src not in SOURCES:
            raise BeaconError(f"src: must be one of {', '.join(SOURCES)}; got {_shown(src)}")
    session = data.get("s")
    if "s" in data and (not isinstance(session, str) or not _SESSION.fullmatch(session)):
        raise BeaconError(f"s: must be the page's session id, 22 URL-safe characters; got {_shown(session)}")
    return Beacon(kind=kind, value=value, src=src, session=session)


def visitor_key(secret: bytes, address: str, user_agent: str, day: date) -> str:
    """The server's key of one visitor for one UTC day: 16 hex digits of HMAC-SHA256 (keyed with the session
    secret) of the client's address, User-Agent and the day. It gives neither back, and changes every day."""
    message = f"{day.isoformat()}\n{address}\n{user_agent}".encode("utf-8", "replace")
    return hmac.new(secret, _VISITOR_KEY + message, "sha256").hexdigest()[:VISITOR_CHARS]


@blueprint.record
def _keep_origins(state: BlueprintSetupState) -> None:
    """The origins pages are served from (and the pay origin), worked out once per app: a beacon from them may
    read our answer."""
    origins = set()
    for campaign in state.app.extensions["billcast"].campaigns:
        for url in (campaign.public_url, campaign.pay_url):
            parts = urlsplit(url)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    state.app.extensions[_ORIGINS] = frozenset(origins)


def page_origins(app: Flask) -> frozenset[str]:
    """The origins a beacon's answer may be read from (``Access-Control-Allow-Origin``)."""
    return app.extensions[_ORIGINS]


@blueprint.after_request
def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin and origin in current_app.extensions[_ORIGINS]:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers.add("Vary", "Origin")
    response.headers["Cache-Control"] = "no-store"
    return response


def _answer(message: str | None = None, status: int = 204, headers: dict[str, str] | None = None) -> Response:
    """No body for a beacon taken (or dropped); ``{"error": ..., "status": ...}`` for one refused."""
    if message is None:
        response = Response(status=status, headers=headers)
        del response.headers["Content-Type"]  # no body, so no type
        return response
    body = json.dumps({"error": message, "status": status}, ensure_ascii=False)
    return Response(body + "\n", status, headers, mimetype="application/json")


@blueprint.route("/e/<token>", methods=["OPTIONS"], provide_automatic_options=False)
def preflight(token: str) -> Response:
    """A preflight (a client sending ``application/json``): POST with a Content-Type is allowed."""
    return _answer(headers={"Allow": "POST, OPTIONS", "Access-Control-Allow-Methods": "POST",
                            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"})


def _body() -> bytes:
    """The body, whole; a declared length over the limit was refused before (the app's limit for /e/)."""
    try:
        body = request.stream.read(MAX_BODY)
        more = request.stream.read(1)  # past the app's own limit for this route (the same), this raises
    except RequestEntityTooLarge:
        more = b"-"
    if more:
        raise BeaconError(f"body: is over {MAX_BODY} bytes; a beacon is at most {MAX_BODY}", 413)
    return body


def _check_media_type() -> None:
    if request.mimetype not in MEDIA_TYPES:
        shown = request.mimetype or "none"
        raise BeaconError(f"Content-Type: must be text/plain or application/json; got {shown}", 415)
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise BeaconError(f"Content-Type: charset must be UTF-8; got {_shown(charset)}", 415)


@dataclass(frozen=True)
class Taken:
    """What a good beacon came to: 204 (recorded, a repeat, or dropped), 429 (``retry_after`` seconds) or 503."""

    status: int = 204
    error: str | None = None
    retry_after: int | None = None


def take(svc: Service, token: str, event: Beacon, address: str, user_agent: str) -> Taken:
    """Record a good beacon for ``token`` from a client at ``address`` with ``user_agent`` (hashed, never kept)."""
    at, wait = datetime.now(UTC), None
    visitor = visitor_key(svc.settings.session_secret, address, user_agent, at.date())
    try:
        for ledger, campaign_ids in svc.ledgers():  # one ledger, one transaction, almost always
            result = ledger.add_beacon_event(campaign_ids=campaign_ids, token=token, kind=event.kind,
                                             value=event.value, at=at, limit=svc.settings.events_per_minute,
                                             window=WINDOW, visitor=visitor, session=event.session)
            if result.recorded or result.repeat or result.retry_after is not None:
                wait = result.retry_after
                break
    except LedgerError:
        return Taken(503, "the ledger is not available; the event was not recorded")
    if wait is not None:
        return Taken(429, "too many events for this page; try again later", max(1, math.ceil(wait)))
    return Taken()


@blueprint.route("/e/<token>", methods=["POST"], provide_automatic_options=False)
def beacon(token: str) -> Response:
    """Record one engagement event: 204 whether or not the token is known or the event a repeat; 400/413/415 bad
    beacon; 429 too many. A well-formed beacon is usually answered before Flask (``events_front``); this view
    answers what that leaves to it, alike."""
    if not TOKEN.fullmatch(token):
        return _answer("token: must be 16-128 letters, digits, '-' or '_'", 400)
    try:
        body = _body()
        _check_media_type()
        event = parse_beacon(body)
    except BeaconError as exc:
        return _answer(str(exc), exc.status)
    taken = take(service(), token, event, request.remote_addr or "", request.headers.get("User-Agent", ""))
    retry = None if taken.retry_after is None else {"Retry-After": str(taken.retry_after)}
    return _answer(taken.error, taken.status, retry)
