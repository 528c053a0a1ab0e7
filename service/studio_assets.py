"""The studio's assets folder: the images and audio beds storyboards name, and uploads checked by content.

A storyboard names its assets relative to one assets folder (``fonts/``,
``images/``, ``audio/``), as ``billcast --assets DIR`` does. The studio's own
folder (config ``BILLCAST_STUDIO_ASSETS``) starts as a copy of the packaged
assets, so the shipped storyboards keep rendering, and takes uploads; without
it the studio reads the packaged assets and takes none (they live in the
installed package, which is no place to write).

An upload is trusted for nothing its name says. Images must decode as PNG,
JPEG or WebP with Pillow, within a byte, side and pixel budget checked from the
header before a pixel is decoded (no decompression bombs); SVG is refused. Audio
must start like MP4/M4A, MP3, WAV, Ogg or FLAC and decode whole with ffmpeg
(told its format, reading local files only) within a size and length limit.
The stored name and extension come from the content.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from billcast.renderer import packaged

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 24_000_000
MAX_AUDIO_BYTES = 16 * 1024 * 1024
MAX_AUDIO_SECONDS = 600
MAX_UPLOAD = MAX_AUDIO_BYTES + 64 * 1024  # a request: the largest file and its form
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
AUDIO_FORMATS = {"mov": ".m4a", "mp3": ".mp3", "wav": ".wav", "ogg": ".ogg", "flac": ".flac"}
TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
         ".m4a": "audio/mp4", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".flac": "audio/flac"}
FOLDERS = {"images": "image", "audio": "audio"}
ASSET_RE = re.compile(r"^(images|audio)/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_probes: dict[tuple, float | None] = {}
_probes_lock = threading.Lock()


class AssetRefused(Exception):
    """An upload or deletion that is refused; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 422, users: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.users = users or []


@dataclass(frozen=True)
class Asset:
    path: str  # relative to the assets folder, e.g. images/logo.png
    kind: str  # image | audio
    bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None


# --- what a file is, from its bytes ------------------------------------------------------------------


def sniff_image(data: bytes) -> tuple[str, int, int]:
    """(extension, width, height) of a PNG, JPEG or WebP image that decodes whole; else :class:`AssetRefused`."""
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        raise AssetRefused("SVG images are not accepted (they can carry scripts): export it as PNG", 415)
    if len(data) > MAX_IMAGE_BYTES:
        raise AssetRefused(f"images may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as img:
                width, height = img.size
                if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
                    limit = f"{MAX_IMAGE_SIDE} px a side and {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
                    raise AssetRefused(f"{width}x{height} is too large: images may be at most {limit}", 413)
                if getattr(img, "n_frames", 1) > 1:
                    raise AssetRefused("animated images are not accepted: use a still PNG, JPEG or WebP")
                kind = img.format
                img.load()
    except AssetRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AssetRefused("the image would decode to too many pixels", 413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise AssetRefused("not a PNG, JPEG or WebP image, nor M4A, MP3, WAV, Ogg or FLAC audio (the file's "
                           "content was checked, not its name)", 415) from None
    return IMAGE_FORMATS[kind], width, height


def audio_format(data: bytes) -> str:
    """ffmpeg's name for the container ``data`` starts like; else :class:`AssetRefused`."""
    if data[4:8] == b"ftyp":
        return "mov"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"fLaC":
        return "flac"
    raise AssetRefused("not an M4A, MP3, WAV, Ogg or FLAC audio file (the content was checked, not the name)", 415)


def probe_audio(path: Path, fmt: str, timeout: float = 30.0) -> float:
    """Decode the whole file with ffmpeg as ``fmt`` (local files only); its duration in seconds."""
    from imageio_ffmpeg import get_ffmpeg_exe

    argv = [get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-f", fmt, "-i",
            str(path), "-map", "0:a:0", "-t", str(MAX_AUDIO_SECONDS + 1), "-f", "null", "-"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AssetRefused("the audio took too long to read") from None
    log = done.stderr.decode("utf-8", "replace")
    found = _DURATION_RE.search(log)
    if done.returncode != 0 or "Audio:" not in log or found is None:
        raise AssetRefused("the audio cannot be decoded (is it a complete audio file?)", 415)
    hours, minutes, seconds = found.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if duration > MAX_AUDIO_SECONDS:
        raise AssetRefused(f"audio beds may be at most {MAX_AUDIO_SECONDS // 60} minutes long, "
                           f"got {duration / 60:.1f}", 413)
    return duration


def safe_stem(filename: str) -> str:
    """A file name's stem as a plain lower-case word: ``My Logo (final).PNG`` -> ``my-logo-final``."""
    stem = Path(filename.replace("\\", "/")).name.rsplit(".", 1)[0] if filename else ""
    stem = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:48]
    return stem or "upload"


# --- the folder ---------------------------------------------------------------------------------------


class AssetFolder:
    """One assets folder; only a writable one takes uploads and deletions."""

    _seeding = threading.Lock()

    def __init__(self, root: Path, writable: bool = False) -> None:
        self.root = Path(root)
        self.writable = writable

    def ensure(self) -> None:
        """A writable folder that has no fonts yet is filled with the packaged assets first."""
        if not self.writable or (self.root / "fonts").is_dir():
            return
        with self._seeding:
            if (self.root / "fonts").is_dir():
                return
            source = packaged("assets")
            self.root.mkdir(parents=True, exist_ok=True)
            for folder in ("images", "audio", "fonts"):  # fonts last: its presence says the copy is whole
                shutil.copytree(source / folder, self.root / folder, dirs_exist_ok=True)

    def stamp(self) -> tuple:
        """Changes whenever a file is added to or removed from images/ or audio/ (for caches of checks)."""
        self.ensure()
        out = []
        for folder in FOLDERS:
            try:
                out.append((self.root / folder).stat().st_mtime_ns)
            except OSError:
                out.append(0)
        return tuple(out)

    def fonts(self) -> Path:
        self.ensure()
        return self.root / "fonts"

    def file(self, rel: str) -> Path | None:
        """The file behind an asset path, or None when it is not an asset here (or not a path at all)."""
        if not ASSET_RE.fullmatch(rel) or ".." in rel or Path(rel).suffix.lower() not in TYPES:
            return None
        self.ensure()
        path = self.root / rel
        try:
            if not path.is_file() or path.resolve().parent != (self.root / rel.split("/")[0]).resolve():
                return None
        except OSError:
            return None
        return path

    def list(self) -> list[Asset]:
        self.ensure()
        found = []
        for folder, kind in FOLDERS.items():
            base = self.root / folder
            for path in sorted(base.glob("*")) if base.is_dir() else []:
                rel = f"{folder}/{path.name}"
                if self.file(rel) is not None:
                    found.append(self._describe(rel, path, kind))
        return found

    def _describe(self, rel: str, path: Path, kind: str) -> Asset:
        size = path.stat().st_size
        if kind == "image":
            try:
                with Image.open(path) as img:
                    return Asset(rel, kind, size, *img.size)
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
                return Asset(rel, kind, size)
        key = (str(path), size, path.stat().st_mtime_ns)
        with _probes_lock:
            known = key in _probes
        if not known:
            try:
                duration: float | None = probe_audio(path, audio_format(path.read_bytes()[:16]))
            except AssetRefused:
                duration = None
            with _probes_lock:
                _probes[key] = duration
        return Asset(rel, kind, size, duration=_probes[key])

    def add(self, filename: str, data: bytes) -> Asset:
        """Check an upload by its content and store it under a free name; :class:`AssetRefused` otherwise."""
        if not self.writable:
            raise AssetRefused("uploads need the studio's own assets folder: set BILLCAST_STUDIO_ASSETS", 409)
        if not data:
            raise AssetRefused("the file is empty")
        self.ensure()
        try:
            fmt = audio_format(data[:16])
        except AssetRefused:
            fmt = None
        if fmt is None:
            ext, width, height = sniff_image(data)
            return self._store("images", filename, ext, data, Asset("", "image", len(data), width, height))
        if len(data) > MAX_AUDIO_BYTES:
            raise AssetRefused(f"audio beds may be at most {MAX_AUDIO_BYTES // (1024 * 1024)} MB", 413)
        with tempfile.TemporaryDirectory(prefix="billcast-upload-") as tmp:
            probe = Path(tmp) / f"probe{AUDIO_FORMATS[fmt]}"
            probe.write_bytes(data)
            duration = probe_audio(probe, fmt)
        return self._store("audio", filename, AUDIO_FORMATS[fmt], data, Asset("", "audio", len(data),
                                                                              duration=duration))

    def _store(self, folder: str, filename: str, ext: str, data: bytes, asset: Asset) -> Asset:
        base = self.root / folder
        base.mkdir(parents=True, exist_ok=True)
        stem = safe_stem(filename)
        tmp = base / f".upload-{uuid.uuid4().hex}"
        tmp.write_bytes(data)
        try:
            for n in range(1, 1000):
                name = f"{stem}{ext}" if n == 1 else f"{stem}-{n}{ext}"
                try:
                    os.link(tmp, base / name)  # never over an existing file, even one made a moment ago
                except FileExistsError:
                    continue
                return Asset(f"{folder}/{name}", asset.kind, asset.bytes, asset.width, asset.height, asset.duration)
        finally:
            tmp.unlink(missing_ok=True)
        raise AssetRefused("too many files with that name", 409)

    def delete(self, rel: str, users: list[dict]) -> None:
        """Remove an asset no storyboard names; :class:`AssetRefused` with the users otherwise."""
        if not self.writable:
            raise AssetRefused("the packaged assets cannot be changed: set BILLCAST_STUDIO_ASSETS", 409)
        path = self.file(rel)
        if path is None:
            raise AssetRefused("no such asset", 404)
        if users:
            names = ", ".join(sorted({u["storyboard"] for u in users}))
            raise AssetRefused(f"{rel} is used by {names}: remove it there first", 409, users)
        path.unlink()


def asset_users(rel: str, texts: dict[str, str]) -> list[dict]:
    """Where each storyboard text (by name) names the asset ``rel``: [{storyboard, line}]."""
    pattern = re.compile(r"(?<![\w./-])" + re.escape(rel) + r"(?![\w./-])")
    found = []
    for name, text in sorted(texts.items()):
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.search(line):  # a mention in a comment counts too: better kept than broken
                found.append({"storyboard": name, "line": number})
    return found
