"""The page's links: the recipient's token in the path, the option and source in the query, nothing else.

No amount and no personal data ever goes into a link: the payment service finds
the amount from its own records by the token.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import SiteError

PAY_OPTIONS = ("full", "plan", "card")  # card: save a new card for a payment plan whose charge failed
SOURCES = ("video", "site", "qr", "email")  # which part was clicked: the video, the page, the QR code, the email; one list for links, beacons, the ledger and reports
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def check_token(token: str) -> str:
    """A recipient token: 16-128 URL-safe characters (``jobs.links.random_token`` gives 22)."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise SiteError("must be 16-128 letters, digits, '-' or '_' (use a random token, never personal data)",
                        field="token")
    return token


def check_base_url(url: str, field: str) -> str:
    """An absolute http(s) URL with no query or fragment, without its trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SiteError(f"must be an absolute http(s) URL with no query or fragment, got {url!r}", field=field)
    return url.rstrip("/")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, for the Content-Security-Policy."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def pay_link(pay_url: str, token: str, option: str, src: str) -> str:
    """``{pay_url}/pay/{token}?option=full|plan&src=site|video|qr|email``."""
    if option not in PAY_OPTIONS:
        raise ValueError(f"option must be one of {', '.join(PAY_OPTIONS)}, got {option!r}")
    if src not in SOURCES:
        raise ValueError(f"src must be one of {', '.join(SOURCES)}, got {src!r}")
    return f"{pay_url.rstrip('/')}/pay/{token}?option={option}&src={src}"


def page_link(public_url: str, token: str) -> str:
    """Where the recipient's page is published: ``{public_url}/r/{token}/``."""
    return f"{public_url.rstrip('/')}/r/{token}/"


def optout_link(pay_url: str, token: str) -> str:
    """The service's opt-out page (and RFC 8058 one-click endpoint): ``{pay_url}/r/{token}/optout``."""
    return f"{pay_url.rstrip('/')}/r/{token}/optout"


def dispute_link(pay_url: str, token: str) -> str:
    """The service's form to dispute the amount: ``{pay_url}/r/{token}/dispute``."""
    return f"{pay_url.rstrip('/')}/r/{token}/dispute"
