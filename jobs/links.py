"""Per-recipient links: an unguessable token in the path, and nothing personal anywhere.

A campaign's tokens are derived from a secret (``recipient_token``), so a re-run
gives every customer the same link without storing one per customer; the secret
comes from the environment (``link_secret``) and never appears in a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from .campaign import CampaignError
from .secret_file import SecretFileError, kept_secret

SECRET_MIN_CHARS = 32


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


def recipient_token(secret: bytes, campaign_id: str, customer_id: str) -> str:
    """A customer's token in a campaign: the first 128 bits of HMAC-SHA256, URL-safe, 22 characters.

    The same secret and ids always give the same token; without the secret it cannot be
    guessed, nor can the customer be told from it.
    """
    if not secret:
        raise ValueError("the link secret must not be empty")
    message = f"{campaign_id}\0{customer_id}".encode("utf-8")
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def link_secret(env_name: str, *, environ: Mapping[str, str], keep: Path | None = None,
                file: Path | None = None) -> bytes:
    """The secret links are derived from: ``environ[env_name]``, at least 32 characters.

    When the variable is unset (or empty): the secret in ``file`` (a campaign's ``link_secret_file``,
    such as a container secret), which must exist; else, with ``keep`` (the demo), the secret kept in
    that file, generated there once (32 random bytes, hex, mode 0600) if need be. Otherwise an unset
    variable is a :class:`CampaignError` saying how to set it.
    """
    value = environ.get(env_name, "")
    if value:
        if len(value) < SECRET_MIN_CHARS:
            raise CampaignError(f"${env_name} is too short: a link secret needs at least {SECRET_MIN_CHARS} "
                                f"characters, it has {len(value)}. {_how_to_set(env_name)}",
                                field="link_secret_env")
        return value.encode("utf-8")
    if file is not None:
        return _secret_file(file, env_name)
    if keep is None:
        raise CampaignError(f"${env_name} is not set. {_how_to_set(env_name)}", field="link_secret_env")
    try:
        value = kept_secret(Path(keep))
    except SecretFileError as exc:
        raise CampaignError(f"{exc}, or set ${env_name}", field="link_secret_env") from None
    if len(value) < SECRET_MIN_CHARS:
        raise CampaignError(f"the kept link secret {keep} is shorter than {SECRET_MIN_CHARS} characters; "
                            f"remove it to make a new one, or set ${env_name}", field="link_secret_env")
    return value.encode("ascii")


def _secret_file(file: Path, env_name: str) -> bytes:
    try:
        value = file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not ASCII text"
        raise CampaignError(f"cannot read the link secret file {file} ({reason}); write a secret there, or "
                            f"set ${env_name}", field="link_secret_file") from None
    if len(value) < SECRET_MIN_CHARS:
        raise CampaignError(f"the link secret in {file} is shorter than {SECRET_MIN_CHARS} characters",
                            field="link_secret_file")
    return value.encode("ascii")


def _how_to_set(env_name: str) -> str:
    return (f"Set it to a random secret and keep it for the campaign's life (changing it changes every link): "
            f"export {env_name}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')")
