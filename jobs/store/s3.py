"""The S3 backend: AWS S3, MinIO, Cloudflare R2, moto or any S3-compatible service, through boto3.

boto3 is imported on first use, not at import time, so commands that never touch S3 do not pay
for it; one boto3 session is kept per process and each store makes its own client from it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from billcast.renderer import PublishError

from .base import MiB, ObjectInfo, ObjectNotFound, ObjectStore, check_key, check_prefix, resolve_headers

_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")


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
        headers = resolve_headers(check_key(key), content_type, cache_control, metadata)
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
        return self._list(check_prefix(prefix))

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
