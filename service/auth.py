"""The admin side's sign-in: the admin token as a bearer header, or a session cookie set by signing in once.

Every try of the token by the sign-in form, and every wrong bearer token, is
counted per client in the ledger before it is answered; past the limits
(``signin_failures`` per client in ``signin_window_minutes``, ``signin_failures_all``
of every client in a minute) the answer is 429 with ``Retry-After``, to the right
token too. A success takes the client's count back; a right bearer token from a
client with nothing counted costs a read, not a write. Sessions are kept in the ledger (``admin_sessions``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from urllib.parse import urlsplit
from typing import Any

from flask import Blueprint, Response, redirect, render_template_string, request, url_for

from billcast.jobs.ledger import Ledger, LedgerError

from .admin_sessions import Throttled, attempt, close_session, may_try, open_session, right_token, session_is_open
from .context import service
from .settings import ADMIN_ENV

blueprint = Blueprint("auth", __name__)
log = logging.getLogger("billcast.service")


def _ledger() -> Ledger:
    ledger = service().admin_ledger()
    if ledger is None:
        raise LedgerError("no campaign ledger to keep sign-ins in", where="admin_ledger")
    return ledger


def _bearer(given: str, token: str) -> bool:
    """A bearer token: a wrong one counted as a sign-in attempt, the right one let in without a write while
    the client is within the limits (each a :class:`Throttled` past them)."""
    ledger = _ledger()
    if hmac.compare_digest(given.encode(), token.encode()):
        right_token(ledger)
        return True
    attempt(ledger)
    return False


def is_admin() -> bool:
    """Whether the request carries the admin token or an open session; raises Throttled or LedgerError."""
    token = service().settings.admin_token
    if not token:
        return False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return _bearer(header[7:].strip(), token)
    return session_is_open(_ledger(), token)


def _unavailable(exc: LedgerError) -> Response:
    log.error("sign-in: the ledger is not available: %s", exc)
    return Response("Signing in is not available now (the ledger is unreachable); try again shortly.\n", 503,
                    {"Retry-After": "30"}, mimetype="text/plain")


def _wait_words(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    when = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M UTC")
    return f"{minutes} minute{'s' if minutes > 1 else ''} (after {when})"


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reports and the studio: the admin token, or a sign-in page (HTML) / 401 (anything else)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not service().settings.admin_token:
            return Response(f"Set {ADMIN_ENV} to use this page.\n", 503, mimetype="text/plain")
        try:
            allowed = is_admin()
        except Throttled as exc:
            return Response(f"Too many sign-in attempts; try again in {_wait_words(exc.retry_after)}.\n", 429,
                            {"Retry-After": str(exc.retry_after)}, mimetype="text/plain")
        except LedgerError as exc:
            return _unavailable(exc)
        if allowed:
            return view(*args, **kwargs)
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))
        return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="billcast"'},
                        mimetype="text/plain")

    return wrapped


_SIGNIN = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex,nofollow"><title>Sign in – Billcast</title>
<style>body{font-family:system-ui,sans-serif;background:#F5F7FA;color:#102A35;display:grid;place-items:center;
min-height:100vh;margin:0}form{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0001;
width:min(22rem,90vw)}h1{font-size:1.4rem;margin-top:0;color:#08303F}label{display:block;margin-bottom:.4rem}
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #8aa;border-radius:6px}
button{margin-top:1rem;width:100%;padding:.7rem;font-size:1rem;font-weight:bold;background:#F2A541;color:#08303F;
border:0;border-radius:6px;cursor:pointer}.error{color:#B3261E}</style></head>
<body><form method="post"><h1>Billcast</h1>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password"
required autofocus><input type="hidden" name="next" value="{{ next }}"><button type="submit">Sign in</button>
</form></body></html>"""


def same_site_path(target: str) -> str:
    """Where signing in may lead: a path on this site, else ``/``.

    Control characters and backslashes go first (browsers drop or turn them into ``/``, so
    ``/\\evil.example`` or ``/<TAB>/evil.example`` would leave the site), then the rest must
    parse with no scheme and no host and start with a single ``/``.
    """
    cleaned = "".join(ch for ch in target if ch.isprintable() and ch != "\\")
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return "/"
    return cleaned


def _throttled(exc: Throttled, target: str) -> Any:
    """The sign-in form saying when this client may try again: 429 with ``Retry-After``."""
    error = f"Too many sign-in attempts. Try again in {_wait_words(exc.retry_after)}."
    return render_template_string(_SIGNIN, error=error, next=target), 429, {"Retry-After": str(exc.retry_after)}


@blueprint.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    token = service().settings.admin_token
    target = same_site_path(request.values.get("next", "/"))
    if request.method != "POST":
        try:
            may_try(_ledger())  # a read: a locked-out client is told before it types
        except Throttled as exc:
            return _throttled(exc, target)
        except LedgerError:
            pass  # the form all the same: trying says why it cannot be used
        return render_template_string(_SIGNIN, error=None, next=target)
    try:
        ledger = _ledger()
        client = attempt(ledger)  # before the token is looked at
        given = request.form.get("token", "")
        if token and hmac.compare_digest(given.encode(), token.encode()):
            ledger.signin_succeeded(client)
            open_session(ledger, token)
            return redirect(target, 303)
    except Throttled as exc:
        return _throttled(exc, target)
    except LedgerError as exc:
        return _unavailable(exc)
    return render_template_string(_SIGNIN, error="That token is not right.", next=target), 401


@blueprint.post("/signout")
def signout() -> Any:
    try:
        close_session(service().admin_ledger())
    except LedgerError as exc:
        return _unavailable(exc)
    return redirect(url_for("auth.signin"), 303)
