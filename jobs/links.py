"""Per-recipient links: an unguessable token in the path, and nothing personal anywhere."""

from __future__ import annotations

import secrets


def random_token() -> str:
    """128 bits of secret entropy, URL-safe."""
    return secrets.token_urlsafe(16)


def recipient_links(public_url: str, pay_url: str, token: str) -> dict[str, str]:
    """The links a storyboard can name: the page, and pay buttons for the QR code."""
    public_url, pay_url = public_url.rstrip("/"), pay_url.rstrip("/")
    return {
        "page": f"{public_url}/r/{token}/",
        "pay": f"{pay_url}/pay/{token}?option=full&src=qr",
        "plan": f"{pay_url}/pay/{token}?option=plan&src=qr",
    }
