"""The service as one Flask app, made by :func:`create_app` from one :class:`ServiceSettings`.

It serves the folder store locally (``serving``), takes payments (``payments``),
receives the payment provider's webhooks (``webhooks``) and the pages' engagement
beacons (``events``), takes opt-outs (``optout``) and disputes (``disputes``), and
shows reports (``reports``) and the storyboard studio (``studio``) behind the
admin token (``auth``). What requests share lives in
:class:`~billcast.service.context.Service`, in ``app.extensions["billcast"]``;
no blueprint imports this module.
"""

from __future__ import annotations

from flask import Flask, Response

from . import (auth, demo_provider, disputes, events, experiment_reports, optout, payments, reports, serving, studio,
               webhooks)
from .context import Service
from .settings import ServiceSettings


def _headers(response: Response) -> Response:
    """What a CDN in front of the pages would add, on everything the service answers."""
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def create_app(settings: ServiceSettings) -> Flask:
    """The service as a Flask app: local serving, pay, webhooks, events, reports (and the studio)."""
    app = Flask("billcast.service", static_folder=None)  # static/ paths belong to the published store
    app.config.update(SECRET_KEY=settings.session_secret, SESSION_COOKIE_SECURE=settings.secure_cookies,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="billcast_admin", PERMANENT_SESSION_LIFETIME=8 * 3600,
                      MAX_CONTENT_LENGTH=1024 * 1024)
    app.extensions["billcast"] = Service(settings)
    for module in (auth, payments, demo_provider, webhooks, events, reports, experiment_reports, studio,
                   optout, disputes, serving):  # serving last: it answers any other path
        app.register_blueprint(module.blueprint)
    app.after_request(_headers)
    return app
