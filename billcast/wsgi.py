"""The WSGI entry points, configured from the environment (and ``$BILLCAST_CONFIG``):

- ``billcast.wsgi:app``: both sides in one app (as ``billcast serve``);
- ``billcast.wsgi:public_app``: the public side (pages, pay, webhooks, beacons, opt-out, disputes);
- ``billcast.wsgi:admin_app``: the admin side (sign-in, reports, the studio), which needs
  ``BILLCAST_ADMIN_TOKEN`` and lowers its process's priority to ``BILLCAST_ADMIN_NICE``.

For any WSGI server (gunicorn, uWSGI, mod_wsgi)::

    BILLCAST_CAMPAIGNS=/etc/billcast/nov.toml:/etc/billcast/dec.toml gunicorn -c gunicorn.conf.py billcast.wsgi:app

The settings are ``billcast serve``'s (docs/CONFIGURATION.md): ``BILLCAST_CAMPAIGNS``
lists the campaign files to serve (separated by ``:``), the rest as documented. An
app is made on first access, not at import, so importing this module does no work;
a missing or unsafe setting stops the server with one line naming it (exit 10).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask

from billcast.renderer import BillcastError, SettingsError

from .logs import configure_logging
from .server import Side, side_app
from .settings import load_settings

CAMPAIGNS_ENV = "BILLCAST_CAMPAIGNS"
SIDES: dict[str, Side] = {"app": "both", "public_app": "public", "admin_app": "admin"}


def app_from_environ(environ: Mapping[str, str], side: Side = "both") -> Flask:
    """One side's app (or both sides') configured from ``environ`` alone; its log set as the settings say."""
    settings = load_settings(environ)
    configure_logging(settings.log_format, getattr(logging, (settings.log_level or "info").upper()))
    if not settings.campaigns:
        raise SettingsError(CAMPAIGNS_ENV, f"is not set: list the campaign files to serve, separated by "
                                           f"'{os.pathsep}'")
    return side_app(settings, settings.campaigns, side)


def __getattr__(name: str) -> Any:
    if name in SIDES:
        try:
            made = globals()[name] = app_from_environ(os.environ, SIDES[name])
        except BillcastError as exc:  # one line, not the server's traceback
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(exc.exit_code) from None
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
