"""Health for load balancers and orchestrators: ``GET /healthz`` (the process answers) and ``GET /readyz``
(every campaign's ledger and store answer, and the ledger's schema is at this code's head revision).

Both answer small JSON with no secrets: no URL, no host, no error text (the
reason is logged, not answered). ``/readyz`` is 200 when every check is ``ok``,
else 503 with ``failed`` naming the checks that were not.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from billcast.jobs.ledger import Ledger, head_revision

from .context import service

blueprint = Blueprint("health", __name__)
log = logging.getLogger("billcast.service")
CHECKS = ("ledger", "migrations", "store")
PROBE_KEY = "readyz"  # a key no run publishes: asking for it proves the store answers


def _json(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/healthz")
def healthz() -> Response:
    return _json({"status": "ok"}, 200)


def migrations_current(ledger: Ledger) -> bool:
    """Whether the ledger's schema is at the newest revision this code knows (``billcast db upgrade`` makes it so)."""
    return ledger.schema_revision() == head_revision()


@blueprint.get("/readyz")
def readyz() -> Response:
    svc = service()
    checks = dict.fromkeys(CHECKS, "ok")
    for campaign in svc.campaigns:
        try:
            current = migrations_current(svc.ledger(campaign))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason goes to the log
            log.warning("readyz: the ledger of campaign %s does not answer: %s", campaign.id, exc)
            checks["ledger"] = checks["migrations"] = "failed"
        else:
            if not current:
                log.warning("readyz: the ledger of campaign %s is not at the current schema", campaign.id)
                checks["migrations"] = "failed"
        try:
            svc.store(campaign).head(PROBE_KEY)
        except Exception as exc:  # noqa: BLE001
            log.warning("readyz: the store of campaign %s does not answer: %s", campaign.id, exc)
            checks["store"] = "failed"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return _json({"status": "unavailable", "failed": failed, "checks": checks}, 503)
    return _json({"status": "ok", "checks": checks}, 200)
