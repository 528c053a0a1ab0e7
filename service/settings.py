"""The service's settings: one frozen object of plain values, made at the entry point and passed to ``create_app``.

Where the values come from (the environment, files, a TOML file) is the entry
point's business (``billcast.settings``); the service only reads this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    proxies' ``X-Forwarded-*`` headers to believe (0: none). Signing in is held to
    ``signin_failures`` failed attempts per client in ``signin_window_minutes`` and
    ``signin_failures_all`` of all clients in any minute; a session ends after
    ``session_hours``, or ``session_idle_minutes`` without a request. Both are kept in
    ``admin_ledger`` (None: the first campaign's ledger).
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
    signin_failures: int = 10  # per client (a keyed hash of its address) in signin_window_minutes
    signin_window_minutes: int = 15
    signin_failures_all: int = 60  # of every client together, in any minute
    session_hours: int = 8  # a session's whole life
    session_idle_minutes: int = 60  # a session unused this long is over
    admin_ledger: str | None = None
    storyboards_dir: Path | None = None  # the studio's folders; None: its defaults (service/studio_web.py)
    samples_dir: Path | None = None
    studio_assets_dir: Path | None = None
    studio_cache_dir: Path | None = None
    studio_check_seconds: float = 10.0  # the studio's worker processes: limits of one check or frame,
    studio_render_seconds: float = 120.0  # of one preview render,
    studio_memory_mb: int = 2048  # the address space of each worker,
    studio_workers: int = 1  # workers that check and draw, per service process,
    studio_queue: int = 4  # and jobs that may wait for one (beyond: 503),
    studio_yield_percent: int = 30  # stopped while other work keeps more of the host's CPUs busy (0: never)

    def studio_config(self) -> dict[str, Path]:
        """The studio's folders as the app's config keys it reads (only those set)."""
        keys = {"BILLCAST_STORYBOARDS": self.storyboards_dir, "BILLCAST_SAMPLES": self.samples_dir,
                "BILLCAST_STUDIO_ASSETS": self.studio_assets_dir, "BILLCAST_STUDIO_CACHE": self.studio_cache_dir}
        return {key: value for key, value in keys.items() if value is not None}

    @property
    def demo_payments(self) -> bool:
        return not self.stripe_api_key
