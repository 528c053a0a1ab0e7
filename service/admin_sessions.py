"""What signing in keeps in the ledger: attempts per client (the throttle) and server-side sessions.

A client is a keyed hash (HMAC with the session secret) of its address as the
app sees it: behind ``trusted_proxies`` reverse proxies, the address they name
(ProxyFix). An IPv6 client is its /64, the block one host is usually given, so
that walking through one's own addresses gains nothing. Neither the address
nor its hash is logged; the ledger holds only the hash.

A session is 32 random bytes carried in the signed session cookie; the ledger
keeps their SHA-256, the MAC of the admin token it was opened with, and its
times. Signing out revokes the row, so a copy of the cookie opens nothing
after; a new admin token closes every session (the MAC no longer matches).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from datetime import UTC, datetime, timedelta

from flask import request, session

from billcast.jobs.ledger import Ledger, SigninLimits

from .context import service
from .settings import ServiceSettings

SESSION_KEY = "sid"
TOUCH_EVERY = timedelta(minutes=1)  # a session's last-seen time is written at most this often
_SECRET = re.compile(r"[0-9a-f]{64}")


class Throttled(Exception):
    """Too many sign-in attempts: from this client, or from all of them; ``retry_after`` whole seconds."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:.0f} s")
        self.retry_after = max(1, math.ceil(seconds))


def _mac(label: bytes, value: str) -> str:
    return hmac.new(service().settings.session_secret, label + value.encode(), "sha256").hexdigest()


def token_mac(token: str) -> str:
    """What a session keeps of the admin token: changing the token signs every session out."""
    return _mac(b"billcast admin token\n", token)


def client_key() -> str:
    """This request's client as the throttle counts it: 32 hex digits of a keyed hash of its address."""
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        shown = address
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            shown = str(ip.ipv4_mapped)
        elif isinstance(ip, ipaddress.IPv6Address):
            shown = str(ipaddress.IPv6Network((ip, 64), strict=False))
        else:
            shown = str(ip)
    return _mac(b"billcast sign-in client\n", shown)[:32]


def limits(settings: ServiceSettings) -> SigninLimits:
    return SigninLimits(per_client=settings.signin_failures, window=timedelta(minutes=settings.signin_window_minutes),
                        all_clients=settings.signin_failures_all)


def attempt(ledger: Ledger) -> str:
    """Count a sign-in attempt of this client (before its token is even looked at); its key.

    Raises :class:`Throttled` when this client, or every client together, is at its limit.
    """
    client = client_key()
    wait = ledger.signin_attempt(client, datetime.now(UTC), limits(service().settings))
    if wait is not None:
        raise Throttled(wait)
    return client


def may_try(ledger: Ledger) -> tuple[str, bool]:
    """This client's key, and whether it has attempts counted, when it is within the limits (a read, counting
    nothing); :class:`Throttled` past them."""
    client = client_key()
    wait, counted = ledger.signin_allowed(client, datetime.now(UTC), limits(service().settings))
    if wait is not None:
        raise Throttled(wait)
    return client, counted


def right_token(ledger: Ledger) -> None:
    """This client gave the right token: within the limits it is let in, with no write unless it has failures to
    take back. Past a limit it waits like a wrong guess (:class:`Throttled`), so a guess learns nothing there."""
    client, counted = may_try(ledger)
    if counted:
        ledger.signin_succeeded(client)


def open_session(ledger: Ledger, token: str) -> None:
    """A new session for a signed-in admin: its row in the ledger, its secret in the cookie."""
    settings, now = service().settings, datetime.now(UTC)
    secret = secrets.token_bytes(32)
    ledger.open_admin_session(session_id=hashlib.sha256(secret).hexdigest(), token_mac=token_mac(token), at=now,
                              expires_at=now + timedelta(hours=settings.session_hours),
                              idle=timedelta(minutes=settings.session_idle_minutes))
    session.clear()
    session[SESSION_KEY] = secret.hex()
    session.permanent = True


def _session_id() -> str | None:
    secret = session.get(SESSION_KEY)
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        return None
    return hashlib.sha256(bytes.fromhex(secret)).hexdigest()


def session_is_open(ledger: Ledger, token: str) -> bool:
    """Whether the cookie's session is one the ledger holds open, opened with this admin token."""
    session_id = _session_id()
    if session_id is None:
        return False
    row = ledger.admin_session(session_id)
    now = datetime.now(UTC)
    idle = timedelta(minutes=service().settings.session_idle_minutes)
    if (row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at <= now - idle
            or not hmac.compare_digest(row.token_mac, token_mac(token))):
        return False
    if now - row.last_seen_at >= TOUCH_EVERY:
        ledger.touch_admin_session(session_id, now, TOUCH_EVERY)
    return True


def close_session(ledger: Ledger | None) -> None:
    """Sign out: the session's row revoked, the cookie emptied."""
    session_id = _session_id()
    if session_id is not None and ledger is not None:
        ledger.revoke_admin_session(session_id, datetime.now(UTC))
    session.clear()
