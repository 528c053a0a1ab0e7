"""The admin side's sign-in: the admin token as a bearer header, or a session cookie set by signing in once."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit
from typing import Any

from flask import Blueprint, Response, redirect, render_template_string, request, session, url_for

from .context import service
from .settings import ADMIN_ENV

blueprint = Blueprint("auth", __name__)


def is_admin() -> bool:
    token = service().settings.admin_token
    if not token:
        return False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    return bool(session.get("admin")) and hmac.compare_digest(str(session.get("admin_key", "")),
                                                               _admin_key(token))


def _admin_key(token: str) -> str:
    """What the session keeps: a MAC of the token, so changing the token signs every session out."""
    return hmac.new(service().settings.session_secret, token.encode(), "sha256").hexdigest()


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reports and the studio: the admin token, or a sign-in page (HTML) / 401 (anything else)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not service().settings.admin_token:
            return Response(f"Set {ADMIN_ENV} to use this page.\n", 503, mimetype="text/plain")
        if is_admin():
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


@blueprint.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    token = service().settings.admin_token
    target = same_site_path(request.values.get("next", "/"))
    if request.method == "POST":
        given = request.form.get("token", "")
        if token and hmac.compare_digest(given.encode(), token.encode()):
            session.clear()
            session["admin"] = True
            session["admin_key"] = _admin_key(token)
            session.permanent = True
            return redirect(target, 303)
        return render_template_string(_SIGNIN, error="That token is not right.", next=target), 401
    return render_template_string(_SIGNIN, error=None, next=target)


@blueprint.post("/signout")
def signout() -> Any:
    session.clear()
    return redirect(url_for("auth.signin"), 303)
