"""The service's two sides as Flask apps, made from one :class:`ServiceSettings`.

The public side (:func:`create_public_app`) is what a debtor's browser and the
payment provider reach: it serves the folder store locally (``serving``), takes
payments (``payments``, the demo provider's checkout ``demo_provider``), receives
the provider's webhooks (``webhooks``) and the pages' beacons (``events``), takes
opt-outs (``optout``) and disputes (``disputes``). The admin side
(:func:`create_admin_app`) is what the utility's staff reach: sign-in (``auth``),
reports (``reports``, ``experiment_reports``) and the storyboard studio
(``studio``). Each answers health checks (``health``). The public app registers
no admin route and holds no admin token, so no request to it can reach one; the
two run as separate processes in production (docs/DEPLOY.md). :func:`create_app`
is both in one app, for the demo on one port.

All three are made by one function, so every request gets the same hooks: one
log record without personal data (``access``), body limits, security headers,
error pages and JSON errors (``errors``), the proxy headers believed as
configured. What requests share lives in
:class:`~billcast.service.context.Service`, in ``app.extensions["billcast"]``; no
blueprint imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from types import ModuleType, TracebackType

from flask import Flask, Response, abort, redirect, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (access, auth, demo_provider, disputes, errors, events, events_front, experiment_reports, health,
               optout, payments, reports, serving, studio, webhooks)
from .context import Service
from .settings import ServiceSettings

HSTS = "max-age=31536000; includeSubDomains"
# Request bodies, per route (path prefix); 413 beyond. Everything else (forms, GETs) gets DEFAULT_BODY_LIMIT.
BODY_LIMITS = (("/stripe/webhook", 256 * 1024), ("/e/", events.MAX_BODY), ("/studio/", 1024 * 1024))
DEFAULT_BODY_LIMIT = 64 * 1024
PUBLIC = (payments, demo_provider, webhooks, events, optout, disputes)  # and serving, last: it answers any path
ADMIN = (auth, reports, experiment_reports, studio)
ADMIN_PREFIXES = ("/signin", "/signout", "/reports", "/studio")  # the admin side's paths (a proxy routes by them)


class _App(Flask):
    def log_exception(self, exc_info: tuple[type[BaseException], BaseException, TracebackType]
                      | tuple[None, None, None]) -> None:
        access.log_exception(exc_info)


def _body_limit() -> None:
    """This route's limit: refused at once when the declared length is over it, else cut off at it when read."""
    limit = next((limit for prefix, limit in BODY_LIMITS if request.path.startswith(prefix)), DEFAULT_BODY_LIMIT)
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413, f"body: is {request.content_length} bytes; this route takes at most {limit}")


SECURITY_HEADERS = (("Referrer-Policy", "no-referrer"), ("X-Robots-Tag", "noindex, nofollow"),
                    ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"))


def _headers(response: Response) -> Response:
    """What a CDN in front of the pages would add, on everything the service answers; HSTS over https."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _admin_home() -> Response:
    """The admin host's root: the reports (signing in leads here by default)."""
    return redirect("/reports/", 302)


def _build(settings: ServiceSettings, areas: Sequence[ModuleType], *, admin: bool, public: bool) -> Flask:
    """An app with these areas' blueprints and the hooks every side shares; the session cookie only for admin."""
    app = _App("billcast.service", static_folder=None)  # static/ paths belong to the published store
    app.config.update(MAX_CONTENT_LENGTH=DEFAULT_BODY_LIMIT)
    if admin:
        app.config.update(SECRET_KEY=settings.session_secret, SESSION_COOKIE_SECURE=settings.secure_cookies,
                          SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                          SESSION_COOKIE_NAME="billcast_admin", PERMANENT_SESSION_LIFETIME=settings.session_hours * 3600,
                          **settings.studio_config())
    shared = Service(settings)
    shared.open_ledgers()  # a ledger it cannot use (LedgerError, exit 8) stops the service before it serves
    app.extensions["billcast"] = shared
    for module in (health, *areas):
        app.register_blueprint(module.blueprint)
    if public:
        app.register_blueprint(serving.blueprint)  # last: it answers any path the others did not take
    else:
        app.add_url_rule("/", "admin_home", _admin_home)
    app.before_request(access.start)
    app.before_request(_body_limit)
    app.after_request(_headers)
    app.after_request(access.finish)
    errors.register(app)
    if public:  # beacons are the public side's
        app.wsgi_app = events_front.BeaconFront(app, app.wsgi_app, SECURITY_HEADERS, HSTS)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_port=hops, x_prefix=hops)
    return app


def create_public_app(settings: ServiceSettings) -> Flask:
    """The public side: pages, pay, the demo checkout, webhooks, beacons, opt-out, disputes, health.

    It is given no admin token: nothing in its processes could open the admin side.
    """
    return _build(replace(settings, admin_token=None), PUBLIC, admin=False, public=True)


def create_admin_app(settings: ServiceSettings) -> Flask:
    """The admin side: sign-in, reports, experiment reports, the studio, health; no pages, no payments."""
    return _build(settings, ADMIN, admin=True, public=False)


def create_app(settings: ServiceSettings) -> Flask:
    """Both sides in one app on one port (the demo's ``billcast serve``, ``billcast.wsgi:app``)."""
    return _build(settings, (*PUBLIC, *ADMIN), admin=True, public=True)
