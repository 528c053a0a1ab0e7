"""The object-store contract every backend keeps: keys, headers and the ``ObjectStore`` interface.

Key and header rules live here, not in a backend, so a page published to a folder and one
published to S3 are refused, defaulted and served alike.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from billcast.renderer import PublishError

NO_STORE = "no-store"
"""Cache-Control for pages that carry personal data: never kept by browsers or proxies."""
IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control for shared content-addressed keys (``static/<hash>/``), whose bytes never change under one
name. Never for anything personal: a CDN would keep it after the link expires (see ``private_cache``)."""
PRIVATE = "private, max-age=3600"
"""The default Cache-Control for anything that is not HTML: browser-only, one hour."""



def private_cache(seconds: int, *, immutable: bool = False) -> str:
    """Cache-Control for a personal object: kept by the recipient's browser only (no CDN, no shared proxy),
    for at most ``seconds`` (the link's remaining life), ``immutable`` when its bytes never change."""
    return f"private, max-age={max(0, int(seconds))}" + (", immutable" if immutable else "")


MAX_KEY_BYTES = 1024
RESERVED = ".billcast-"
"""Key segments may not start with this: the folder store keeps its sidecars and temporary files under it."""
MiB = 1024 * 1024
MAX_METADATA_BYTES = 2048

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".vtt": "text/vtt; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".ttf": "font/ttf",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".pdf": "application/pdf",
}
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


class ObjectNotFound(PublishError):
    """A key that is not in the store: names the store URL and the key."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(url, key)  # args stay (url, key) so the error pickles across processes
        self.url = url
        self.key = key

    def __str__(self) -> str:
        return f"{self.url}: {self.key}: no such object"


@dataclass(frozen=True)
class ObjectInfo:
    """What ``head`` tells about a stored object."""

    key: str
    size: int
    content_type: str
    cache_control: str
    metadata: Mapping[str, str] = field(default_factory=dict)


def guess_content_type(key: str) -> str:
    """The Content-Type for a key, by its extension; ``application/octet-stream`` when unknown."""
    name = key.rsplit("/", 1)[-1]
    return _CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise ValueError (a programming error).

    Keys are relative, "/"-separated, with no empty, "." or ".." segments, no backslash or NUL,
    no segment starting with ``.billcast-`` and at most 1024 bytes in UTF-8.
    """
    if not isinstance(key, str):
        raise ValueError(f"object key: must be a str, got {type(key).__name__}")
    if not key:
        raise ValueError("object key: must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"object key {key[:40]!r}...: longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise ValueError(f"object key {key!r}: must be relative (no leading '/')")
    if "\\" in key or "\x00" in key:
        raise ValueError(f"object key {key!r}: must not contain a backslash or NUL")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"object key {key!r}: empty, '.' or '..' segment")
        if segment.startswith(RESERVED):
            raise ValueError(f"object key {key!r}: segments starting with {RESERVED!r} are reserved")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if some valid key could start with it (the rule for ``list``), else raise ValueError."""
    if prefix:
        check_key(prefix + "x")
    return prefix


@dataclass(frozen=True)
class Headers:
    """The headers an object is stored with, defaults applied and checked."""

    content_type: str
    cache_control: str
    metadata: Mapping[str, str]


def resolve_headers(key: str, content_type: str | None, cache_control: str | None,
                    metadata: Mapping[str, str] | None) -> Headers:
    """Apply the defaults and check that every value can travel as an HTTP header (ValueError if not)."""
    content_type = guess_content_type(key) if content_type is None else content_type
    if cache_control is None:
        cache_control = NO_STORE if content_type.startswith("text/html") else PRIVATE
    for name, value in (("content_type", content_type), ("cache_control", cache_control)):
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"{key}: {name}: must be printable ASCII without surrounding spaces, got {value!r}")
    meta = dict(metadata or {})
    for name, value in meta.items():
        if not isinstance(name, str) or not _METADATA_NAME.fullmatch(name):
            raise ValueError(f"{key}: metadata: name {name!r} must be lower-case letters, digits and '-'")
        if not isinstance(value, str) or not (value == "" or _HEADER_VALUE.fullmatch(value)):
            raise ValueError(f"{key}: metadata: {name}: value must be printable ASCII, got {value!r}")
    if sum(len(n) + len(v) for n, v in meta.items()) > MAX_METADATA_BYTES:
        raise ValueError(f"{key}: metadata: more than {MAX_METADATA_BYTES} bytes (S3's limit)")
    return Headers(content_type, cache_control, meta)


class ObjectStore(ABC):
    """Where published files go. Keys are relative to the store's own root or prefix."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None,
                  cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        """Store ``data`` under ``key``, replacing any object there, with its headers."""

    @abstractmethod
    def put_file(self, key: str, path: Path, *, content_type: str | None = None,
                 cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        """Store a copy of the file at ``path`` under ``key``; the caller's file is left alone."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound when the key is missing."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and headers, or None when the key is missing."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return self.head(key) is not None

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with ``prefix``, in sorted (UTF-8 byte) order."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Remove the objects under ``keys``; keys already missing are fine."""

    def local_path(self, key: str) -> Path | None:
        """Where the object's file is on this machine (it may not exist); None for remote stores.
        To read it, use ``open_local``, which follows no symbolic link."""
        check_key(key)
        return None

    def open_local(self, key: str) -> BinaryIO | None:
        """The object's file on this machine opened for reading, for serving it directly (ranges);
        None for remote stores; raises ObjectNotFound when there is no such object."""
        check_key(key)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
