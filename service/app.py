"""The service as one Flask app, made by :func:`create_app` from one :class:`ServiceSettings`.

It serves the folder store locally (``serving``), takes payments (``payments``),
receives the payment provider's webhooks (``webhooks``) and the pages' engagement
beacons (``events``), takes opt-outs (``optout``) and disputes (``disputes``),
answers health checks (``health``), and shows reports (``reports``) and the
storyboard studio (``studio``) behind the admin token (``auth``). What requests
share lives in :class:`~billcast.service.context.Service`, in
``app.extensions["billcast"]``; no blueprint imports this module. Every request
is logged once without personal data (``access``); errors answer as pages or JSON
(``errors``).
"""

from __future__ import annotations

from types import TracebackType

from flask import Flask, Response, abort, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (access, auth, demo_provider, disputes, errors, events, events_front, experiment_reports, health,
               optout, payments, reports, serving, studio, webhooks)
from .context import Service
from .settings import ServiceSettings

HSTS = "max-age=31536000; includeSubDomains"
# Request bodies, per route (path prefix); 413 beyond. Everything else (forms, GETs) gets DEFAULT_BODY_LIMIT.
BODY_LIMITS = (("/stripe/webhook", 256 * 1024), ("/e/", events.MAX_BODY), ("/studio/", 1024 * 1024))
DEFAULT_BODY_LIMIT = 64 * 1024


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


def create_app(settings: ServiceSettings) -> Flask:
    """The service as a Flask app: local serving, pay, webhooks, events, health, reports (and the studio)."""
    app = _App("billcast.service", static_folder=None)  # static/ paths belong to the published store
    app.config.update(SECRET_KEY=settings.session_secret, SESSION_COOKIE_SECURE=settings.secure_cookies,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="billcast_admin", PERMANENT_SESSION_LIFETIME=8 * 3600,
                      MAX_CONTENT_LENGTH=DEFAULT_BODY_LIMIT, **settings.studio_config())
    shared = Service(settings)
    shared.open_ledgers()  # a ledger it cannot use (LedgerError, exit 8) stops the service before it serves
    app.extensions["billcast"] = shared
    for module in (health, auth, payments, demo_provider, webhooks, events, reports, experiment_reports, studio,
                   optout, disputes, serving):  # serving last: it answers any other path
        app.register_blueprint(module.blueprint)
    app.before_request(access.start)
    app.before_request(_body_limit)
    app.after_request(_headers)
    app.after_request(access.finish)
    errors.register(app)
    app.wsgi_app = events_front.BeaconFront(app, app.wsgi_app, SECURITY_HEADERS, HSTS)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_port=hops, x_prefix=hops)
    return app
