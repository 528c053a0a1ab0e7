"""The segment cache: encoded pieces of video kept by the hash of what shapes their pixels.

A folder of files named ``<key>.<checksum>.<ext>``: the checksum is the first
16 hex digits of the file's SHA-256, so a truncated or corrupt file is found
when it is read and is dropped, never used. Writers put a file under a
temporary name and rename it into place, so many processes can share one
cache; whoever finishes last wins, and both wrote the same thing. The folder
is kept under a size bound by deleting what was used least recently (a hit
touches the file).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

DEFAULT_MAX_BYTES = 2 * 1024**3
_EVICT_EVERY = 32  # puts between two scans of the folder


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/billcast/segments``, or ``~/.cache/billcast/segments``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "billcast" / "segments"


class SegmentCache:
    """Content-addressed files with checksums, safe to share between processes."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._puts = 0
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"SegmentCache({str(self.root)!r}, max_bytes={self.max_bytes})"

    def _shard(self, key: str) -> Path:
        return self.root / key[:2]

    def get(self, key: str, ext: str = "mp4") -> Path | None:
        """The cached file for ``key``, checked against its checksum; None when absent or damaged."""
        shard = self._shard(key)
        try:
            names = [n for n in os.listdir(shard) if n.startswith(key + ".") and n.endswith("." + ext)]
        except FileNotFoundError:
            names = []
        for name in names:
            path = shard / name
            expected = name[len(key) + 1:-len(ext) - 1]
            try:
                intact = file_digest(path)[:16] == expected
            except FileNotFoundError:
                continue  # evicted meanwhile
            if not intact:
                path.unlink(missing_ok=True)  # truncated or corrupt: render it again
                continue
            try:
                os.utime(path)
            except FileNotFoundError:
                continue
            self.hits += 1
            return path
        self.misses += 1
        return None

    def put(self, key: str, src: str | os.PathLike[str], ext: str = "mp4") -> Path:
        """Copy a finished file into the cache under ``key``; returns its cached path."""
        shard = self._shard(key)
        shard.mkdir(parents=True, exist_ok=True)
        tmp = shard / f".{key}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.copyfile(src, tmp)
            final = shard / f"{key}.{file_digest(tmp)[:16]}.{ext}"
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        self._puts += 1
        if self._puts % _EVICT_EVERY == 1:
            self.evict()
        return final

    def entries(self) -> list[os.DirEntry]:
        found = []
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        for shard in shards:
            if shard.is_dir():
                try:
                    found += [e for e in os.scandir(shard.path) if not e.name.startswith(".") and e.is_file()]
                except FileNotFoundError:
                    continue
        return found

    def size(self) -> int:
        total = 0
        for entry in self.entries():
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def evict(self) -> int:
        """Delete least recently used files until the folder is under 90 % of its bound; returns bytes freed."""
        stats = []
        for entry in self.entries():
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            stats.append((st.st_mtime, st.st_size, entry.path))
        total = sum(size for _, size, _ in stats)
        if total <= self.max_bytes:
            return 0
        freed = 0
        for _, size, path in sorted(stats):
            if total - freed <= self.max_bytes * 0.9:
                break
            try:
                os.unlink(path)
                freed += size
            except FileNotFoundError:
                pass
        return freed
