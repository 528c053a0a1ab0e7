"""Service apps for the sign-in tests: no campaign, the admin ledger given, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from billcast.service import ServiceSettings, create_app

ADMIN = "signin-admin-token-0123456789abcdef"
SECRET = b"z" * 32
ADDRESS = "203.0.113.7"  # TEST-NET-3: what the tests' clients say they are


def signin_app(ledger_url: str, **overrides: Any) -> Flask:
    values: dict[str, Any] = {"campaigns": (), "webhook_secret": "whsec_signin", "session_secret": SECRET,
                              "admin_token": ADMIN, "secure_cookies": False, "admin_ledger": ledger_url}
    values.update(overrides)
    app = create_app(ServiceSettings(**values))
    app.config["TESTING"] = True
    return app


def sign_in(client: FlaskClient, token: str = ADMIN, address: str = ADDRESS, **headers: str) -> Any:
    return client.post("/signin", data={"token": token, "next": "/reports/"}, headers=headers,
                       environ_base={"REMOTE_ADDR": address})


def reports(client: FlaskClient, address: str = ADDRESS, **headers: str) -> int:
    return client.get("/reports/", headers=headers, environ_base={"REMOTE_ADDR": address}).status_code
