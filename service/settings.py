"""The service's settings: one frozen object, read once at the entry point and passed to ``create_app``."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billcast.jobs.campaign import Campaign
from billcast.jobs.secret_file import kept_secret
from billcast.renderer import PaymentError

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
                raise PaymentError(f"{STRIPE_WEBHOOK_ENV} is not set: with {STRIPE_KEY_ENV} set, give the webhook "
                                   "signing secret of the endpoint (whsec_...) from the Stripe dashboard")
            webhook = _secret(keep, "webhook_secret", lambda: "whsec_demo_" + secrets.token_hex(24))
        session_secret = _secret(keep, "session_secret", lambda: secrets.token_hex(32)).encode()
        admin = environ.get(ADMIN_ENV, "").strip() or None
        return cls(campaigns=campaigns, webhook_secret=webhook, session_secret=session_secret, admin_token=admin,
                   stripe_api_key=stripe_key, **overrides)


def _secret(folder: Path | None, name: str, make: Any) -> str:
    """A secret kept in ``folder/name``, made on first use; without a folder, a new one each start."""
    return kept_secret(folder / name, make) if folder is not None else make()
