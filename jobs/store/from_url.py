"""Opening a store from its URL: the one place that knows which scheme names which backend."""

from __future__ import annotations

from pathlib import Path

from billcast.renderer import PublishError

from .base import ObjectStore
from .folder import FolderStore
from .s3 import S3Store

_SCHEMES = "file:///absolute/path, file://relative/path or s3://bucket/prefix"


def open_store(url: str, *, base: Path | None = None, endpoint_url: str | None = None,
               region: str | None = None, max_connections: int = 10) -> ObjectStore:
    """Open the store a URL names: ``file://`` (relative paths resolve against ``base``) or ``s3://``.

    Raises PublishError for a URL that names no store this package knows.
    """
    scheme, sep, _ = str(url).partition("://")
    if sep and scheme.lower() == "file":
        return FolderStore(url, base=base)
    if sep and scheme.lower() == "s3":
        return S3Store(url, endpoint_url=endpoint_url, region=region, max_connections=max_connections)
    if not sep:
        raise PublishError(f"{url or '<empty>'}: store: not a store URL; use {_SCHEMES}")
    raise PublishError(f"{url}: store: unknown scheme {scheme!r}; use {_SCHEMES}")
