"""``billcast serve``: the service under gunicorn (``--dev``: Flask's reloading development server).

One side of it or both: ``--public`` (pages, pay, webhooks, beacons: what debtors
and the payment provider reach), ``--admin`` (sign-in, reports, the studio: what
staff reach, run at lower CPU priority so that it cannot slow the public side on
a shared host), or both on one port (the demo). In production the two sides are
two processes, two systemd units, on two ports (docs/DEPLOY.md).

Gunicorn runs through its Python API (:class:`Server`), with the app made once
in the master and forked into ``workers`` processes of ``threads`` threads each
(gthread: keep-alive connections, and a slow client holds a thread, not a
process). Its access log is off: the app logs each request itself, without
addresses or tokens (``billcast.service.access``); its error log goes through
the same handler and formatter as everything else (:class:`GunicornLogger`).
Nothing in a worker's memory needs to agree with another's: sessions and the
demo's webhook secret come from the shared session secret, the beacons' rate
limit is counted in the ledger.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from werkzeug.serving import WSGIRequestHandler

from billcast.jobs import priority
from billcast.renderer import SettingsError

from .settings import Settings, env_name, load_campaigns, service_settings

Side = Literal["both", "public", "admin"]


class GunicornLogger(glogging.Logger):
    """Gunicorn's error log through the root handler (our format, scrubbed); no access log at all."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
        self.error_log.propagate = True
        self.access_log.disabled = True
        if not logging.getLogger().handlers:  # gunicorn started by hand (billcast.wsgi:app): until the app sets it
            from .logs import configure_logging

            configure_logging("text", logging.INFO)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: gunicorn's access line carries the client's address and the path with its token."""


def side_app(settings: Settings, campaign_files: Sequence[Path], side: Side) -> Flask:
    """The app of one side (or both) for these campaigns; it opens every ledger, so one it cannot use stops
    it here.

    The admin side on its own needs the admin token (the public side needs none), and runs at niceness
    ``admin_nice`` (at least), set here before anything forks: its workers, their threads and what they
    start inherit it, so its work waits for the public side's on a shared host (its session's scheduler
    group too, when it leads one: :mod:`billcast.jobs.priority`).
    """
    from billcast.service import create_admin_app, create_app, create_public_app

    if side == "admin" and settings.secret("admin_token") is None:
        raise SettingsError(env_name("admin_token"), "is not set: the admin side (reports, the studio) opens with it; "
                            "give at least 32 characters, e.g. in BILLCAST_ADMIN_TOKEN_FILE")
    service = service_settings(settings, load_campaigns(campaign_files))
    if side == "admin":
        priority.lower_priority(settings.admin_nice)
    return {"both": create_app, "public": create_public_app, "admin": create_admin_app}[side](service)


def gunicorn_options(settings: Settings, side: Side = "both") -> dict[str, Any]:
    """The gunicorn configuration ``billcast serve`` runs with (docs/deploy/gunicorn.conf.py says the same)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "bind": [f"{host}:{settings.port}"],
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": settings.timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "logger_class": GunicornLogger,
        "loglevel": "info",
        "proc_name": "billcast" if side == "both" else f"billcast-{side}",
        # One way to believe a proxy: the app's ProxyFix (trusted_proxies). Gunicorn's own header handling off.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "control_socket_disable": True,  # gunicorn 24+: no control socket in $HOME for a command that stops with us
    }


_NEWER = ("control_socket_disable",)  # settings an older gunicorn does not know: left out there


class Server(BaseApplication):  # type: ignore[misc]
    """Gunicorn around an app already made, configured from a dict (no command line, no config file)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings or key not in _NEWER:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def check_free(settings: Settings) -> None:
    """The address must be free: said in one line naming the setting, not in gunicorn's five retries."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise SettingsError("--port", f"cannot listen on {settings.host}:{settings.port}: "
                                f"{exc.strerror or exc}; choose another (--host, --port or BILLCAST_PORT)") from None


def serve(settings: Settings, campaign_files: Sequence[Path], *, dev: bool = False, side: Side = "both") -> None:
    """One side of the service (or both) for these campaigns, under gunicorn (``dev``: the development
    server), until stopped."""
    app = side_app(settings, campaign_files, side)
    service = app.extensions["billcast"].settings
    app.extensions["billcast"].close()  # each worker opens its own connections after the fork
    if os.environ.get("WERKZEUG_RUN_MAIN") != "true":  # not the development server's reloaded child
        check_free(settings)
        how = "the development server" if dev else f"gunicorn, {settings.workers} workers of {settings.threads} threads"
        pay = "demo payments" if service.demo_payments else f"Stripe, {settings.stripe_mode} mode"
        what = {"both": f"{pay}; reports at /reports/", "public": f"the public side, {pay}",
                "admin": f"the admin side at niceness {os.getpriority(os.PRIO_PROCESS, 0)}; reports at /reports/"}
        print(f"Serving {', '.join(c.id for c in service.campaigns)} on http://{settings.host}:{settings.port}/ with "
              f"{how} ({what[side]})", flush=True)
    if dev:
        serve_dev(app, settings)
    else:
        serve_gunicorn(app, settings, side)


def serve_gunicorn(app: Flask, settings: Settings, side: Side = "both") -> None:
    """Run gunicorn until it is stopped (SIGTERM, SIGINT: graceful)."""
    Server(app, gunicorn_options(settings, side)).run()


class _QuietHandler(WSGIRequestHandler):
    """The development server without its request lines (they name the client's address and the path)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve_dev(app: Flask, settings: Settings) -> None:
    """Flask's development server: reloads on code changes, one process; for working on Billcast only."""
    app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=True,
            request_handler=_QuietHandler)
