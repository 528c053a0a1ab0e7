"""Preview videos: a small render of the editor's text, made in a background thread and kept in memory.

One render runs at a time (they are a few seconds each with the fast engine);
asking again for the same text, customer and language gives the job already
made. The files a render writes go to a private temporary folder that is
removed as soon as they are read; a preview for a sample customer reuses
encoded segments through the studio's segment cache, one for a pasted record
uses no cache, so nothing of that record stays on disk.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billcast.renderer import BillcastError, SegmentCache, Timeline, render

FILES = {  # what the page plays, and the Content-Type of each
    "video.mp4": "video/mp4",
    "captions.vtt": "text/vtt; charset=utf-8",
    "cta.json": "application/json",
    "poster.jpg": "image/jpeg",
}
KEEP_JOBS = 6
CACHE_BYTES = 512 * 1024**2


@dataclass
class VideoJob:
    id: str
    key: tuple
    size: tuple[int, int]
    duration: float
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def status(self) -> str:
        if self.finished is None:
            return "rendering"
        return "failed" if self.error else "done"

    def as_json(self) -> dict[str, Any]:
        end = self.finished if self.finished is not None else time.monotonic()
        return {"job": self.id, "status": self.status, "elapsed": round(end - self.started, 1),
                "error": self.error, "size": list(self.size), "duration": self.duration}


class VideoJobs:
    """The studio's preview renders: at most :data:`KEEP_JOBS` kept, one rendering at a time."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, VideoJob] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Semaphore(1)

    def get(self, job_id: str) -> VideoJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, key: tuple, timeline: Timeline, cache_dir: Path | None,
              fonts_dir: Path | None = None) -> VideoJob:
        """A job rendering ``timeline`` (or the one that already did for ``key``); returns at once."""
        with self._lock:
            for job in self._jobs.values():
                if job.key == key and job.status != "failed":
                    return job
            job = VideoJob(id=secrets.token_urlsafe(16), key=key, size=timeline.size,
                           duration=timeline.duration)
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                oldest = next((j for j in self._jobs.values() if j.finished is not None), None)
                if oldest is None:
                    break
                del self._jobs[oldest.id]
        threading.Thread(target=self._run, args=(job, timeline, cache_dir, fonts_dir),
                         name=f"studio-render-{job.id[:6]}", daemon=True).start()
        return job

    def _run(self, job: VideoJob, timeline: Timeline, cache_dir: Path | None, fonts_dir: Path | None) -> None:
        with self._one_at_a_time:
            folder = Path(tempfile.mkdtemp(prefix="billcast-studio-"))  # mode 0700
            try:
                cache = SegmentCache(cache_dir, max_bytes=CACHE_BYTES) if cache_dir is not None else None
                render(timeline, folder / "out", engine="fast", cache=cache, fonts_dir=fonts_dir)
                job.files = {name: (folder / "out" / name).read_bytes() for name in FILES}
            except BillcastError as exc:
                job.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            except Exception as exc:  # a preview must say it failed rather than spin forever
                job.error = f"the render failed: {type(exc).__name__}"
            finally:
                shutil.rmtree(folder, ignore_errors=True)
                job.finished = time.monotonic()

    def wait(self, job: VideoJob, timeout: float) -> bool:
        """Block until ``job`` is finished (or ``timeout`` passes); for tests and scripts."""
        deadline = time.monotonic() + timeout
        while job.finished is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return job.finished is not None
