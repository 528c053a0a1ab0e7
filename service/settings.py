"""The service's settings: one frozen object of plain values, made at the entry point and passed to ``create_app``.

Where the values come from (the environment, files, a TOML file) is the entry
point's business (``billcast.settings``); the service only reads this.
"""

from __future__ import annotations

from dataclasses import dataclass

from billcast.jobs.campaign import Campaign

ADMIN_ENV = "BILLCAST_ADMIN_TOKEN"  # named in the answer of an admin page when no token is set


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service is configured with.

    ``stripe_api_key`` unset means the demo provider: a local checkout page that
    sends a webhook signed exactly as Stripe signs one, with ``webhook_secret``.
    ``stripe_api_base`` points the Stripe client elsewhere (tests: a local server).
    ``session_secret`` signs the admin session and keys the token hashes in logs:
    every worker and host must share it. ``trusted_proxies`` is how many reverse
    proxies' ``X-Forwarded-*`` headers to believe (0: none).
    """

    campaigns: tuple[Campaign, ...]
    webhook_secret: str
    session_secret: bytes
    admin_token: str | None = None
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    secure_cookies: bool = True
    events_per_minute: int = 120  # per page link (token), counted in the ledger across every worker
    trusted_proxies: int = 0

    @property
    def demo_payments(self) -> bool:
        return not self.stripe_api_key
