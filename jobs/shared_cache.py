"""The segment cache shared between hosts through the object store: the local folder first, the store behind it.

A campaign on many hosts with cold caches would encode its shared scenes (the
intro in each language, the mixed sound, the runs of repeated frames) once on
every host. With this cache, the first host to encode a segment also uploads
it to ``cache/segments/<key>.<ext>``; any other host that misses it locally
fetches it from there into its own folder and uses it. Keys are content hashes
(of everything that shapes the segment's bytes), so the objects are immutable
and uploaded with an immutable Cache-Control; the local tier keeps its checksum
and eviction, and the store is never a reason for a render to fail: an upload
or download that goes wrong counts as a miss.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from billcast.renderer import BillcastError, SegmentCache
from billcast.renderer.cache import DEFAULT_MAX_BYTES, file_digest

from .store import NO_STORE, ObjectNotFound, ObjectStore

PREFIX = "cache/segments/"
CHECKSUM = "sha256"


def segment_key(key: str, ext: str) -> str:
    """The store key of a cached segment: ``cache/segments/<key>.<ext>``."""
    return f"{PREFIX}{key}.{ext}"


class SharedSegmentCache(SegmentCache):
    """A :class:`SegmentCache` whose misses are looked up in an object store, and whose puts are uploaded to it."""

    def __init__(self, root: str | os.PathLike[str], store: ObjectStore, *,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(root, max_bytes=max_bytes)
        self.store = store
        self.fetched = 0  # local misses found in the store
        self.uploaded = 0
        self.store_errors = 0

    def __repr__(self) -> str:
        return f"SharedSegmentCache({str(self.root)!r}, {self.store.url!r}, max_bytes={self.max_bytes})"

    def get(self, key: str, ext: str = "mp4") -> Path | None:
        """The local file; else the store's copy, fetched into the local folder; else None."""
        found = super().get(key, ext)
        if found is not None:
            return found
        try:
            data = self.store.get(segment_key(key, ext))
        except ObjectNotFound:
            return None
        except (BillcastError, OSError):
            self.store_errors += 1
            return None
        shard = self._shard(key)
        shard.mkdir(parents=True, exist_ok=True)
        tmp = shard / f".{key}.{uuid.uuid4().hex}.fetch"
        try:
            tmp.write_bytes(data)
            path = SegmentCache.put(self, key, tmp, ext)  # the local tier only: it is in the store already
        finally:
            tmp.unlink(missing_ok=True)
        self.misses -= 1  # it was a hit after all, one tier further
        self.hits += 1
        self.fetched += 1
        return path

    def put(self, key: str, src: str | os.PathLike[str], ext: str = "mp4") -> Path:
        """Keep the file locally, and upload it for the other hosts."""
        path = super().put(key, src, ext)
        try:
            self.store.put_file(segment_key(key, ext), path, cache_control=NO_STORE,  # personal frames: never cached
                                metadata={CHECKSUM: file_digest(path)})
            self.uploaded += 1
        except (BillcastError, OSError):
            self.store_errors += 1  # the others will encode it themselves
        return path
