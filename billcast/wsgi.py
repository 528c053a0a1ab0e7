"""The WSGI entry point, ``billcast.wsgi:app``, configured only from the environment.

For any WSGI server (gunicorn, uWSGI, mod_wsgi)::

    BILLCAST_CAMPAIGNS=/etc/billcast/nov.toml:/etc/billcast/dec.toml gunicorn billcast.wsgi:app

``BILLCAST_CAMPAIGNS`` lists the campaign files to serve (separated by ``:``, the
path separator); the service's other settings are read as ``billcast serve``
reads them (``billcast serve --help``). The app is made on first access, not at
import, so importing this module does no work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from billcast.jobs.campaign import load_campaign
from billcast.renderer import SettingsError
from billcast.service import ServiceSettings, create_app

CAMPAIGNS_ENV = "BILLCAST_CAMPAIGNS"


def service_settings(campaign_files: Sequence[str | Path], environ: Mapping[str, str],
                     **overrides: Any) -> ServiceSettings:
    """The service's settings for these campaign files: secrets from ``environ``; where the demo's secrets are
    not configured, they are made once and kept beside the first campaign's outputs, so every worker agrees."""
    campaigns = tuple(load_campaign(path) for path in campaign_files)
    keep = campaigns[0].out.parent / ".billcast-service"
    return ServiceSettings.from_environ(campaigns, environ, keep=keep, **overrides)


def app_from_environ(environ: Mapping[str, str]) -> Flask:
    """The service app configured from ``environ`` alone."""
    files = [part for part in environ.get(CAMPAIGNS_ENV, "").split(os.pathsep) if part.strip()]
    if not files:
        raise SettingsError(CAMPAIGNS_ENV, f"is not set: list the campaign files to serve, separated by "
                                           f"'{os.pathsep}'")
    return create_app(service_settings(files, environ))


def __getattr__(name: str) -> Any:
    if name == "app":
        made = globals()["app"] = app_from_environ(os.environ)
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
