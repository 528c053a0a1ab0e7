"""Object storage for published outputs: a folder on disk or an S3 bucket, behind one interface.

``open_store("file://var/store")`` gives a :class:`FolderStore` (the default, no services
needed); ``open_store("s3://bucket/prefix", endpoint_url=...)`` gives an :class:`S3Store` that
talks to AWS S3, MinIO, Cloudflare R2 or any S3-compatible service through boto3. Both keep an
object's Content-Type, Cache-Control and small user metadata, so a folder published locally is
served with the same headers the bucket would send. Nothing here touches the network or the disk
until a method is called.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from billcast.renderer import PublishError

NO_STORE = "no-store"
"""Cache-Control for pages that carry personal data: never kept by browsers or proxies."""
IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control for content-addressed keys, whose bytes never change under one name."""
PRIVATE = "private, max-age=3600"
"""The default Cache-Control for anything that is not HTML: browser-only, one hour."""

MAX_KEY_BYTES = 1024
RESERVED = ".billcast-"
"""Key segments may not start with this: the folder store keeps its sidecars and temporary files under it."""
META_DIR = RESERVED + "meta"
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
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_SCHEMES = "file:///absolute/path, file://relative/path or s3://bucket/prefix"


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


def _check_prefix(prefix: str) -> str:
    """A listing prefix is any string that some valid key could start with."""
    if prefix:
        check_key(prefix + "x")
    return prefix


@dataclass(frozen=True)
class _Headers:
    content_type: str
    cache_control: str
    metadata: Mapping[str, str]

    def to_json(self) -> bytes:
        return json.dumps({"content_type": self.content_type, "cache_control": self.cache_control,
                           "metadata": dict(self.metadata)}, sort_keys=True).encode("utf-8")


def _headers(key: str, content_type: str | None, cache_control: str | None,
             metadata: Mapping[str, str] | None) -> _Headers:
    """Apply the defaults and check that every value can travel as an HTTP header."""
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
    return _Headers(content_type, cache_control, meta)


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
        """The object's file on this machine, for serving it directly; None for remote stores."""
        check_key(key)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def open_store(url: str, *, base: Path | None = None, endpoint_url: str | None = None,
               region: str | None = None, max_connections: int = 10) -> ObjectStore:
    """Open the store a URL names: ``file://`` (relative paths resolve against ``base``) or ``s3://``.

    Raises PublishError for a URL that names no store this module knows.
    """
    scheme, sep, _ = str(url).partition("://")
    if sep and scheme.lower() == "file":
        return FolderStore(url, base=base)
    if sep and scheme.lower() == "s3":
        return S3Store(url, endpoint_url=endpoint_url, region=region, max_connections=max_connections)
    if not sep:
        raise PublishError(f"{url or '<empty>'}: store: not a store URL; use {_SCHEMES}")
    raise PublishError(f"{url}: store: unknown scheme {scheme!r}; use {_SCHEMES}")


# ---------------------------------------------------------------- folder store


class FolderStore(ObjectStore):
    """Objects as files under a folder; headers in a sidecar tree ``<root>/.billcast-meta/<key>``.

    Every write goes to a temporary file in the target's folder, is fsynced and then renamed into
    place, so readers never see a partial object. The sidecar is renamed into place before the
    object, so whenever an object exists its headers are there.
    """

    def __init__(self, url: str, *, base: Path | None = None) -> None:
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "file":
            raise PublishError(f"{url}: store: not a file:// URL")
        if not rest:
            raise PublishError(f"{url}: store: no folder given; use file:///absolute/path or file://relative/path")
        path = Path(rest) if rest.startswith("/") else Path(base if base is not None else Path.cwd()) / rest
        self.url = url
        self.root = Path(os.path.abspath(path))

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _meta_path(self, key: str) -> Path:
        return self.root.joinpath(META_DIR, *check_key(key).split("/"))

    def local_path(self, key: str) -> Path:
        """Where the object's file is (or would be): it may not exist."""
        return self._path(key)

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None,
                  cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        headers = _headers(check_key(key), content_type, cache_control, metadata)
        self._put(key, headers, lambda out: out.write(data))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None,
                 cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        headers = _headers(check_key(key), content_type, cache_control, metadata)
        try:
            source = open(path, "rb")
        except OSError as exc:
            raise PublishError(f"{self.url}: {key}: cannot read {path}: {exc.strerror}") from exc
        with source:
            self._put(key, headers, lambda out: shutil.copyfileobj(source, out, MiB))

    def _put(self, key: str, headers: _Headers, fill: Callable[[BinaryIO], Any]) -> None:
        meta_path = self._meta_path(key)
        try:
            try:
                previous: bytes | None = meta_path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                previous = None
            _replace(meta_path, lambda out: out.write(headers.to_json()))
            try:
                _replace(self._path(key), fill)
            except BaseException:
                _restore(meta_path, previous)  # the old object stays: give it back its headers
                raise
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            raise PublishError(f"{self.url}: {key}: cannot store: a file or folder is in the way ({exc.strerror}); "
                               "a folder store cannot hold both 'a' and 'a/b'") from exc
        except OSError as exc:
            raise PublishError(f"{self.url}: {key}: cannot store: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(self.url, key) from None
        except OSError as exc:
            raise PublishError(f"{self.url}: {key}: cannot read: {exc.strerror or exc}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise PublishError(f"{self.url}: {key}: cannot read: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            return None
        headers = self._read_headers(key)
        return ObjectInfo(key=key, size=st.st_size, content_type=headers.content_type,
                          cache_control=headers.cache_control, metadata=dict(headers.metadata))

    def _read_headers(self, key: str) -> _Headers:
        meta_path = self._meta_path(key)
        try:
            raw = json.loads(meta_path.read_bytes())
            return _Headers(str(raw["content_type"]), str(raw["cache_control"]),
                            {str(k): str(v) for k, v in dict(raw.get("metadata", {})).items()})
        except (FileNotFoundError, NotADirectoryError):
            return _headers(key, None, None, None)  # a file placed by hand: the defaults
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PublishError(f"{self.url}: {key}: unreadable headers in {meta_path}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        _check_prefix(prefix)  # now, not on the first next()
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        return _walk(start, folder + "/" if folder else "", prefix)

    def delete(self, keys: Iterable[str]) -> None:
        meta_root = self.root / META_DIR
        for key in keys:
            for path, top in ((self._path(key), self.root), (self._meta_path(key), meta_root)):
                try:
                    if not path.is_dir():
                        os.unlink(path)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                except OSError as exc:
                    raise PublishError(f"{self.url}: {key}: cannot delete: {exc.strerror or exc}") from exc
                _prune(path.parent, top)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FolderStore) and (self.url, self.root) == (other.url, other.root)

    def __hash__(self) -> int:
        return hash((self.url, self.root))


def _replace(path: Path, fill: Callable[[BinaryIO], Any]) -> None:
    """Write a file atomically: a temporary file beside it, fsync, rename over it."""
    tmp = path.parent / f"{RESERVED}tmp-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for attempt in range(10):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask decides, as for any other new file
            break
        except FileNotFoundError:
            if attempt == 9:  # a concurrent delete keeps pruning the folder we just made
                raise
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _restore(meta_path: Path, previous: bytes | None) -> None:
    """Put back the sidecar an object had before a failed overwrite (best effort)."""
    with contextlib.suppress(OSError):
        if previous is None:
            os.unlink(meta_path)
        else:
            _replace(meta_path, lambda out: out.write(previous))


def _walk(folder: Path, base: str, prefix: str) -> Iterator[str]:
    """Keys under ``folder`` that start with ``prefix``, in sorted order, without sidecars or temporaries.

    A sub-folder sorts as its name plus "/", which makes the walk's order the keys' byte order.
    """
    try:
        with os.scandir(folder) as entries:
            found = [(entry.name + "/" if entry.is_dir() else entry.name, entry.is_file())
                     for entry in entries if not entry.name.startswith(RESERVED) and "\\" not in entry.name]
    except (FileNotFoundError, NotADirectoryError):
        return
    for name, is_file in sorted(found):
        rel = base + name
        if name.endswith("/"):
            if rel.startswith(prefix) or prefix.startswith(rel):
                yield from _walk(folder / name[:-1], rel, prefix)
        elif is_file and rel.startswith(prefix):
            yield rel


def _prune(folder: Path, top: Path) -> None:
    """Remove empty folders from ``folder`` up to, not including, ``top``."""
    while folder != top and top in folder.parents:
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent


# ---------------------------------------------------------------- S3 store


class S3Store(ObjectStore):
    """Objects in an S3 bucket (AWS, MinIO, R2, moto...) under an optional key prefix.

    The boto3 client is made on first use, so constructing a store does no I/O, and pickling one
    (to send it to a worker process) drops the client; the copy makes its own.
    """

    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 max_connections: int = 10, multipart_threshold: int = 8 * MiB,
                 multipart_chunksize: int = 8 * MiB, delete_batch_size: int = 1000,
                 list_page_size: int = 1000, max_attempts: int = 5) -> None:
        scheme, _, rest = url.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme.lower() != "s3" or not _BUCKET.fullmatch(bucket):
            raise PublishError(f"{url}: store: expected s3://bucket/optional/prefix with a valid bucket name")
        prefix = prefix.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except ValueError as exc:
                raise PublishError(f"{url}: store: bad key prefix: {exc}") from None
        if not 1 <= delete_batch_size <= 1000:
            raise ValueError(f"{url}: delete_batch_size: must be 1..1000, got {delete_batch_size}")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.max_connections = max_connections
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.delete_batch_size = delete_batch_size
        self.list_page_size = list_page_size
        self.max_attempts = max_attempts
        self._client: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        """The boto3 client, made once per store (and per process)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from botocore.config import Config

                    options: dict[str, Any] = {
                        "max_pool_connections": max(self.max_connections, 10),
                        "retries": {"mode": "standard", "max_attempts": self.max_attempts},
                        "connect_timeout": 10,
                        "read_timeout": 60,
                    }
                    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
                        # Newer botocore sends CRC32 checksums by default, which several S3-compatible
                        # services reject; only send checksums an operation requires.
                        options["request_checksum_calculation"] = "when_required"
                        options["response_checksum_validation"] = "when_required"
                    if self.endpoint_url:
                        options["s3"] = {"addressing_style": "path"}  # MinIO and moto without DNS tricks
                    with _SESSION_LOCK:  # boto3 sessions are not thread-safe; the clients they make are
                        client = _boto3_session().client(
                            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=Config(**options))
                    client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
                    self._client = client
        return self._client

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        """Turn boto3's exceptions into PublishError naming the store and key (never the body)."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            if action == "get" and _is_missing(exc):
                raise ObjectNotFound(self.url, key) from None
            raise PublishError(f"{self.url}: {key}: {action} failed: {_reason(exc)}") from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise PublishError(f"{self.url}: {key}: {action} failed: {exc}") from exc
        except OSError as exc:  # e.g. the file being uploaded vanished midway
            raise PublishError(f"{self.url}: {key}: {action} failed: {exc}") from exc

    def _extra(self, key: str, content_type: str | None, cache_control: str | None,
               metadata: Mapping[str, str] | None) -> dict[str, Any]:
        headers = _headers(check_key(key), content_type, cache_control, metadata)
        return {"ContentType": headers.content_type, "CacheControl": headers.cache_control,
                "Metadata": dict(headers.metadata)}

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None,
                  cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        extra = self._extra(key, content_type, cache_control, metadata)
        with self._errors(key, "put"):
            self._s3().put_object(Bucket=self.bucket, Key=self.prefix + key, Body=bytes(data), **extra)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None,
                 cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        from boto3.s3.transfer import TransferConfig

        extra = self._extra(key, content_type, cache_control, metadata)
        if not os.path.isfile(path):
            raise PublishError(f"{self.url}: {key}: cannot read {path}: not a file")
        transfer = TransferConfig(multipart_threshold=self.multipart_threshold,
                                  multipart_chunksize=self.multipart_chunksize,
                                  max_concurrency=self.max_connections, use_threads=True)
        with self._errors(key, "put"):
            self._s3().upload_file(os.fspath(path), self.bucket, self.prefix + key, ExtraArgs=extra, Config=transfer)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._errors(key, "get"):
            body = self._s3().get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def head(self, key: str) -> ObjectInfo | None:
        check_key(key)
        from botocore.exceptions import ClientError

        with self._errors(key, "head"):
            try:
                reply = self._s3().head_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise
        return ObjectInfo(key=key, size=int(reply.get("ContentLength", 0)),
                          content_type=reply.get("ContentType", ""), cache_control=reply.get("CacheControl", ""),
                          metadata=dict(reply.get("Metadata", {})))

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._list(_check_prefix(prefix))

    def _list(self, prefix: str) -> Iterator[str]:
        with self._errors(prefix or "<all keys>", "list"):
            pages = self._s3().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self.list_page_size})
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix):]
                    with contextlib.suppress(ValueError):  # e.g. "folder/" markers some consoles create
                        yield check_key(key)

    def delete(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(check_key(key))
            if len(batch) == self.delete_batch_size:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: Sequence[str]) -> None:
        with self._errors(keys[0], "delete"):
            reply = self._s3().delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": self.prefix + key} for key in keys], "Quiet": True})
        errors = reply.get("Errors") or []
        if errors:
            first = errors[0]
            key = str(first.get("Key", ""))[len(self.prefix):]
            raise PublishError(f"{self.url}: {key}: delete failed: {first.get('Code')}: {first.get('Message')}"
                               + (f" (and {len(errors) - 1} more keys)" if len(errors) > 1 else ""))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Store) and (self.url, self.endpoint_url, self.region) == (
            other.url, other.endpoint_url, other.region)

    def __hash__(self) -> int:
        return hash((self.url, self.endpoint_url, self.region))


_SESSION_LOCK = threading.Lock()
_SESSIONS: dict[int, Any] = {}


def _boto3_session() -> Any:
    """One boto3 session per process (loading its models costs ~0.2 s), made on first use.

    Keyed by process id so a forked worker never shares its parent's connections. Call with
    ``_SESSION_LOCK`` held.
    """
    import boto3.session

    pid = os.getpid()
    if pid not in _SESSIONS:
        _SESSIONS.clear()
        _SESSIONS[pid] = boto3.session.Session()
    return _SESSIONS[pid]


def _is_missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _reason(exc: Any) -> str:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error.get("Code") or status
    message = error.get("Message") or ""
    hint = {"NoSuchBucket": "; create the bucket or fix the store URL",
            "AccessDenied": "; check the credentials and the bucket policy",
            "403": "; check the credentials and the bucket policy",
            "InvalidAccessKeyId": "; check AWS_ACCESS_KEY_ID",
            "SignatureDoesNotMatch": "; check AWS_SECRET_ACCESS_KEY and the region"}.get(str(code), "")
    return f"{code} (HTTP {status}){': ' + message if message else ''}{hint}"


def _add_content_md5(request: Any, **_: Any) -> None:
    """DeleteObjects: add the Content-MD5 that older botocore sent and some S3-compatible services require."""
    body = request.body
    if isinstance(body, (bytes, bytearray)) and "Content-MD5" not in request.headers:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")
