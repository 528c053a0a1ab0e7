"""The folder backend: objects as files on disk, written atomically, with their headers in sidecars.

The default store: it needs no services, and ``service`` serves its files directly (range
requests) through ``open_local``. Reads follow no symbolic link, anywhere below the root: a link
placed in a page's folder is not an object, and a name the file system refuses (too long) is a key
that is not there, never an error.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from billcast.renderer import PublishError

from .base import (RESERVED, Headers, MiB, ObjectInfo, ObjectNotFound, ObjectStore, check_key, check_prefix,
                   resolve_headers)

META_DIR = RESERVED + "meta"
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP})
"""What a read that follows no link answers for a key that is not a stored object."""
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


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
        headers = resolve_headers(check_key(key), content_type, cache_control, metadata)
        self._put(key, headers, lambda out: out.write(data))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None,
                 cache_control: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        headers = resolve_headers(check_key(key), content_type, cache_control, metadata)
        try:
            source = open(path, "rb")
        except OSError as exc:
            raise PublishError(f"{self.url}: {key}: cannot read {path}: {exc.strerror}") from exc
        with source:
            self._put(key, headers, lambda out: shutil.copyfileobj(source, out, MiB))

    def _put(self, key: str, headers: Headers, fill: Callable[[BinaryIO], Any]) -> None:
        meta_path = self._meta_path(key)
        self._no_links(key)
        try:
            try:
                previous: bytes | None = meta_path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                previous = None
            _replace(meta_path, lambda out: out.write(_sidecar(headers)))
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

    def open_local(self, key: str) -> BinaryIO:
        try:
            return _open_file(self.root, check_key(key).split("/"))
        except OSError as exc:
            if exc.errno in _MISSING:
                raise ObjectNotFound(self.url, key) from None
            raise PublishError(f"{self.url}: {key}: cannot read: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        with self.open_local(key) as file:
            try:
                return file.read()
            except OSError as exc:
                raise PublishError(f"{self.url}: {key}: cannot read: {exc.strerror or exc}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self.open_local(key) as file:
                size = os.fstat(file.fileno()).st_size
        except ObjectNotFound:
            return None
        headers = self._read_headers(key)
        return ObjectInfo(key=key, size=size, content_type=headers.content_type,
                          cache_control=headers.cache_control, metadata=dict(headers.metadata))

    def _read_headers(self, key: str) -> Headers:
        meta_path = self._meta_path(key)
        try:
            with _open_file(self.root, [META_DIR, *key.split("/")]) as file:
                raw = json.loads(file.read())
            return Headers(str(raw["content_type"]), str(raw["cache_control"]),
                           {str(k): str(v) for k, v in dict(raw.get("metadata", {})).items()})
        except OSError as exc:
            if exc.errno not in _MISSING:
                raise PublishError(f"{self.url}: {key}: unreadable headers in {meta_path}: {exc}") from exc
            return resolve_headers(key, None, None, None)  # a file placed by hand: the defaults
        except (ValueError, KeyError, TypeError) as exc:
            raise PublishError(f"{self.url}: {key}: unreadable headers in {meta_path}: {exc}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)  # now, not on the first next()
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        return _walk(start, folder + "/" if folder else "", prefix)

    def delete(self, keys: Iterable[str]) -> None:
        meta_root = self.root / META_DIR
        for key in keys:
            self._no_links(key)
            for path, top in ((self._path(key), self.root), (self._meta_path(key), meta_root)):
                try:
                    if not path.is_dir():
                        os.unlink(path)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                except OSError as exc:
                    raise PublishError(f"{self.url}: {key}: cannot delete: {exc.strerror or exc}") from exc
                _prune(path.parent, top)

    def _no_links(self, key: str) -> None:
        """Refuse to write or delete through a symbolic link between the root and the key's file."""
        for top, parts in ((self.root, check_key(key).split("/")), (self.root, [META_DIR, *key.split("/")])):
            path = top
            for name in parts:
                path = path / name
                try:
                    if stat.S_ISLNK(os.lstat(path).st_mode):
                        raise PublishError(f"{self.url}: {key}: a symbolic link is in the way; the store "
                                           "follows none")
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno in _MISSING:
                        break
                    raise PublishError(f"{self.url}: {key}: {exc.strerror or exc}") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FolderStore) and (self.url, self.root) == (other.url, other.root)

    def __hash__(self) -> int:
        return hash((self.url, self.root))


def _open_file(top: Path, parts: list[str]) -> BinaryIO:
    """The regular file at ``top/parts...``, each component opened relative to the last one without
    following a symbolic link (``O_NOFOLLOW``), so nothing below ``top`` can point outside it."""
    fd = os.open(top, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for name in parts[:-1]:
            inner = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = inner
        inner = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(inner).st_mode):  # a folder, a FIFO, a device: not an object
        os.close(inner)
        raise OSError(errno.EISDIR, "not a regular file")
    return os.fdopen(inner, "rb")


def _sidecar(headers: Headers) -> bytes:
    """The sidecar file's bytes: the headers as sorted JSON."""
    return json.dumps({"content_type": headers.content_type, "cache_control": headers.cache_control,
                       "metadata": dict(headers.metadata)}, sort_keys=True).encode("utf-8")


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
            found = [(entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name,
                      entry.is_file(follow_symlinks=False))
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
