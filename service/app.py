"""The service: one Flask app, made by :func:`create_app` from one :class:`ServiceSettings`.

It serves the folder store locally (``serving``), takes payments (``payments``),
receives the payment provider's webhooks (``webhooks``), the pages' engagement
beacons (``events``), and shows reports (``reports``) behind the admin token.
Everything a request needs is reached through :class:`Service`, kept in
``app.extensions["billcast"]``: the campaigns, and per campaign its ledger and
its store, opened once.

The storyboard studio (``studio``) is mounted here too, at ``/studio``.
This module and the blueprints import ``jobs``; the page builder (the rest of
this package) does not, and nothing in ``jobs`` imports them.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, redirect, render_template_string, request, session, url_for

from billcast.jobs.campaign import Campaign
from billcast.jobs.ledger import Ledger, Recipient
from billcast.jobs.store import ObjectStore, open_store

ADMIN_ENV = "BILLCAST_ADMIN_TOKEN"
STRIPE_KEY_ENV = "STRIPE_API_KEY"
STRIPE_WEBHOOK_ENV = "STRIPE_WEBHOOK_SECRET"


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service is configured with, read once at the entry point.

    ``stripe_api_key`` unset means the demo provider: a local checkout page that
    sends a webhook signed exactly as Stripe signs one, with ``webhook_secret``.
    ``stripe_api_base`` points the Stripe client elsewhere (tests: a local server).
    """

    campaigns: tuple[Campaign, ...]
    webhook_secret: str
    session_secret: bytes
    admin_token: str | None = None
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    secure_cookies: bool = True
    events_per_minute: int = 120  # per token and address

    @property
    def demo_payments(self) -> bool:
        return not self.stripe_api_key

    @classmethod
    def from_environ(cls, campaigns: tuple[Campaign, ...], environ: Mapping[str, str],
                     keep: Path | None = None, **overrides: Any) -> ServiceSettings:
        """Secrets from the environment; with no webhook secret and a ``keep`` folder, one is made and kept there."""
        webhook = environ.get(STRIPE_WEBHOOK_ENV, "").strip()
        stripe_key = environ.get(STRIPE_KEY_ENV, "").strip() or None
        if not webhook:
            if stripe_key:
                from billcast.renderer import PaymentError

                raise PaymentError(f"{STRIPE_WEBHOOK_ENV} is not set: with {STRIPE_KEY_ENV} set, give the webhook "
                                   "signing secret of the endpoint (whsec_...) from the Stripe dashboard")
            webhook = _kept(keep, "webhook_secret", lambda: "whsec_demo_" + secrets.token_hex(24))
        session_secret = _kept(keep, "session_secret", lambda: secrets.token_hex(32)).encode()
        admin = environ.get(ADMIN_ENV, "").strip() or None
        return cls(campaigns=campaigns, webhook_secret=webhook, session_secret=session_secret, admin_token=admin,
                   stripe_api_key=stripe_key, **overrides)


def _kept(folder: Path | None, name: str, make: Callable[[], str]) -> str:
    """A secret kept in ``folder/name`` (mode 0600), made on first use; without a folder, a new one each start."""
    if folder is None:
        return make()
    path = folder / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    value = make()
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    try:
        os.link(tmp, path)  # first writer wins; a racing one reads the winner's
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Found:
    """A recipient found by token, with its campaign and that campaign's ledger and store."""

    campaign: Campaign
    ledger: Ledger
    store: ObjectStore
    recipient: Recipient


@dataclass
class Service:
    """What the app's requests share: campaigns by id, and one ledger and one store per campaign."""

    settings: ServiceSettings
    _ledgers: dict[str, Ledger] = field(default_factory=dict)
    _stores: dict[str, ObjectStore] = field(default_factory=dict)

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        return self.settings.campaigns

    def campaign(self, campaign_id: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    def ledger(self, campaign: Campaign) -> Ledger:
        if campaign.ledger not in self._ledgers:
            self._ledgers[campaign.ledger] = Ledger(campaign.ledger)
        return self._ledgers[campaign.ledger]

    def store(self, campaign: Campaign) -> ObjectStore:
        if campaign.store not in self._stores:
            self._stores[campaign.store] = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url,
                                                      region=campaign.store_region)
        return self._stores[campaign.store]

    def find(self, token: str) -> Found | None:
        """The recipient behind a token, in whichever campaign's ledger has it; None for an unknown token."""
        for campaign in self.campaigns:
            recipient = self.ledger(campaign).recipient_by_token(token)
            if recipient is not None and recipient.campaign_id == campaign.id:
                return Found(campaign, self.ledger(campaign), self.store(campaign), recipient)
        return None

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.close()


def service() -> Service:
    """The :class:`Service` of the app handling the current request."""
    return current_app.extensions["billcast"]


# --- the admin token: a bearer header, or a session cookie set by signing in once -----------------

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
            return redirect(url_for("signin", next=request.full_path.rstrip("?")))
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


def _signin() -> Any:
    token = service().settings.admin_token
    target = request.values.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
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


def _signout() -> Any:
    session.clear()
    return redirect(url_for("signin"), 303)


def _headers(response: Response) -> Response:
    """What a CDN in front of the pages would add, on everything the service answers."""
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def create_app(settings: ServiceSettings) -> Flask:
    """The service as a Flask app: local serving, pay, webhooks, events, reports (and the studio)."""
    from . import events, payments, reports, serving, studio, webhooks

    app = Flask("billcast.service.app", static_folder=None)  # static/ paths belong to the published store
    app.config.update(SECRET_KEY=settings.session_secret, SESSION_COOKIE_SECURE=settings.secure_cookies,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="billcast_admin", PERMANENT_SESSION_LIFETIME=8 * 3600,
                      MAX_CONTENT_LENGTH=1024 * 1024)
    app.extensions["billcast"] = Service(settings)
    app.add_url_rule("/signin", "signin", _signin, methods=["GET", "POST"])
    app.add_url_rule("/signout", "signout", _signout, methods=["POST"])
    for module in (payments, webhooks, events, reports, studio, serving):  # serving last: it answers any other path
        app.register_blueprint(module.blueprint)
    app.after_request(_headers)
    return app
