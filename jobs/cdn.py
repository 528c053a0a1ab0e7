"""Purging a CDN's copies of recipients' files when their links expire (``billcast expire``).

Personal files are published ``private`` (no shared cache should keep them); a CDN
configured to cache them anyway, or objects published before that, are purged here.
The campaign's ``cdn`` key names the CDN: ``cloudfront:DISTRIBUTION_ID`` creates a
CloudFront invalidation through boto3 (credentials from boto3's usual chain; the
endpoint from ``AWS_ENDPOINT_URL_CLOUDFRONT`` when set). Other CDNs: docs/SECURITY.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from billcast.renderer import PublishError

CDN_PATTERN = re.compile(r"cloudfront:([A-Z0-9]{1,128})")
MAX_WILDCARDS = 10  # CloudFront allows 15 wildcard paths in progress at once: past this, one path for all


def check_cdn(value: str) -> str:
    """``value`` if it names a CDN Billcast can purge, else ValueError saying what is expected."""
    if not CDN_PATTERN.fullmatch(value):
        raise ValueError(f"must be cloudfront:DISTRIBUTION_ID (capital letters and digits, e.g. "
                         f"cloudfront:E2QWRUHAPOMQZL), got {value!r}")
    return value


def purge_paths(public_url: str, tokens: Sequence[str]) -> list[str]:
    """The CDN paths that cover these recipients' files, below ``public_url``'s own path."""
    base = urlsplit(public_url).path.rstrip("/")
    if len(tokens) > MAX_WILDCARDS:
        return [f"{base}/r/*"]
    return [f"{base}/r/{token}/*" for token in sorted(tokens)]


def purge(cdn: str, public_url: str, tokens: Sequence[str]) -> str | None:
    """Ask the CDN to drop its copies of these recipients' files; return the invalidation's id (None: nothing
    to purge). Raises ``PublishError`` naming the CDN (never a token) when the CDN refuses."""
    if not tokens:
        return None
    distribution = CDN_PATTERN.fullmatch(check_cdn(cdn)).group(1)  # type: ignore[union-attr]
    paths = purge_paths(public_url, tokens)
    import boto3  # only a campaign with a CDN needs it loaded
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.session.Session().client("cloudfront")
        answer = client.create_invalidation(DistributionId=distribution, InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"billcast-expire-{uuid.uuid4().hex}"})
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PublishError(f"cdn {cdn}: the invalidation failed: {error.get('Code', 'error')}: "
                           f"{error.get('Message', '')}".rstrip(": ")) from None
    except BotoCoreError as exc:
        raise PublishError(f"cdn {cdn}: the invalidation failed: {exc}") from None
    return str(answer["Invalidation"]["Id"])
