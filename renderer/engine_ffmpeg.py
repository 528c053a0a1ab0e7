"""The fast compositor: Pillow draws the layers, ffmpeg composes, animates and encodes them.

This module acts (pictures, cache, processes); the commands it runs are described
in ``ffmpeg_graph``.

Each scene is cut into motion and hold parts (``segments.split_scene``). A
motion part is a graph: the scene's background with its unchanging lower
layers flattened by Pillow, and every layer above overlaid by ffmpeg on the
frames it shows on, with the slide as an ``overlay`` position expression and
fades as ``fade`` on the sprite's alpha. A hold is one keyframe of the still
picture (the last frame of the motion segment before it) followed by a cached
run of frames that only repeat their predecessor (every macroblock skipped),
so a still second costs a few hundred bytes and no encoding at all. Every
segment is in the cache, keyed by its content; the audio bed is mixed once per
storyboard length and cached too; the video is the segments joined by the
concat demuxer with stream copy, the sound muxed beside them.

Filter arguments carry numbers only: all text is drawn by Pillow, and file
names are the engine's own temporary or cache paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from PIL import Image

from .cache import SegmentCache, file_digest
from .compose import Compositor, layer_state, with_opacity
from .encoding import VideoSettings
from .errors import EncodeError
from .ffmpeg_graph import (MotionJob, Overlay, Shifted, Span, audio_command, concat_listing, cut_command,
                           encode_command, join_command, repeat_command, spans_of)
from .segments import Part, audio_key, part_key, repeat_key, split_scene
from .timeline import PlannedLayer, PlannedScene

REPEAT_RUN = 250  # repeated frames are made in runs of this many, shorter runs cut from them
PARTS_PER_PROCESS = 4  # encoders in one ffmpeg: each holds its own frames, so this bounds its memory


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run(argv: list[str]) -> None:
    """The one place the engine starts ffmpeg."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as exc:
        raise EncodeError(f"could not start ffmpeg: {exc}", argv=argv) from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.decode("utf-8", "replace").strip().splitlines()[-8:])
        raise EncodeError(f"ffmpeg failed with exit code {done.returncode}", argv=argv, stderr_tail=tail)


# --- acting: pictures, cache and processes -------------------------------------------------------

@lru_cache(maxsize=1024)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(path)


def content_digest(path: str) -> str:
    """A file's content digest, remembered while the file is unchanged."""
    st = os.stat(path)
    return _digest_of(path, st.st_size, st.st_mtime_ns)


def fonts_digest(fonts_dir: Path) -> str:
    names = sorted(p.name for p in Path(fonts_dir).iterdir() if p.suffix.lower() in (".ttf", ".otf", ".ttc"))
    return ",".join(f"{n}:{content_digest(str(Path(fonts_dir) / n))[:16]}" for n in names)


def _avcc(path: Path) -> bytes:
    """The H.264 parameter sets stored in an MP4's sample description."""
    data = path.read_bytes()
    at = data.find(b"avcC")
    if at < 4:
        raise EncodeError(f"segment {path.name} holds no H.264 parameter sets")
    size = int.from_bytes(data[at - 4:at], "big")
    return data[at + 4:at - 4 + size]


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def units(parts: tuple[Part, ...]) -> list[tuple[Part | None, Part | None]]:
    """Parts paired into segments: a motion part with the keyframe of the hold after it."""
    out: list[tuple[Part | None, Part | None]] = []
    for part in parts:
        if part.kind == "hold" and out and out[-1][0] is not None and out[-1][1] is None:
            out[-1] = (out[-1][0], part)
        else:
            out.append((part, None) if part.kind == "motion" else (None, part))
    return out


class FastEncoder:
    """Encodes one timeline through the segment cache."""

    def __init__(self, comp: Compositor, tmp: Path, settings: VideoSettings, cache: SegmentCache | None) -> None:
        self.comp, self.tmp, self.settings, self.cache = comp, tmp, settings, cache
        tl = comp.timeline
        self.size, self.fps = tl.size, tl.fps
        self.options = settings.segment_options(tl.size, tl.fps)
        self.encoder = tuple(sorted(self.options.items()))
        self.exe = ffmpeg_exe()
        self._written: dict[tuple[int, float, int, int], Shifted] = {}

    # pictures ---------------------------------------------------------------------------------
    def _write(self, image: Image.Image, name: str) -> str:
        path = self.tmp / name
        path.write_bytes(image.tobytes())
        return str(path)

    def _trimmed(self, layer: PlannedLayer) -> tuple[Image.Image, int, int]:
        """The layer's sprite at its opacity, cut to its visible pixels, and where that piece goes."""
        sprite = self.comp.drawer.sprite(layer)
        x0, y0, x1, y1 = self._visible(layer)  # blending costs what the picture measures
        left, top = x0 - sprite.x, y0 - sprite.y
        box = (left, top, max(x1 - sprite.x, left + 1), max(y1 - sprite.y, top + 1))
        return with_opacity(sprite.image, layer.opacity).crop(box), x0, y0

    def _shifted(self, layer, image: Image.Image, px: int, py: int) -> Shifted:
        key = (id(self.comp.drawer.sprite(layer)), layer.opacity, px, py)
        if key not in self._written:
            if px or py:
                padded = Image.new("RGBA", (image.width + px, image.height + py), (0, 0, 0, 0))
                padded.paste(image, (px, py))
                image = padded
            self._written[key] = Shifted(px, py, self._write(image, f"sprite-{len(self._written)}.rgba"), image.size)
        return self._written[key]

    def _overlay(self, layer: PlannedLayer, spans: tuple[Span, ...]) -> Overlay:
        image, x, y = self._trimmed(layer)
        slides = [a for a in layer.anims if a.type == "slide_in"]
        xs = (0, 1) if any(a.offset[0] for a in slides) else (x % 2,)
        ys = (0, 1) if any(a.offset[1] for a in slides) else (y % 2,)
        return Overlay(x, y, layer.anims, tuple(self._shifted(layer, image, px, py) for px in xs for py in ys),
                       spans)

    def _spans(self, layer: PlannedLayer, start: int, frames: int) -> tuple[Span, ...]:
        """The stretches of a job's frames on which ``layer`` shows, faded or at its own opacity."""
        return spans_of([layer_state(layer, (start + i) / self.fps)[0] for i in range(frames)], layer.opacity)

    def _job(self, scene: PlannedScene, motion: Part | None, hold: Part | None, out: Path, tag: str) -> MotionJob:
        """The job for a motion part, the keyframe of the hold after it, or both."""
        start = motion.start if motion else hold.start
        frames = (motion.frames if motion else 0) + (hold is not None)
        flat, over = self._layering(scene, start, frames)
        base = self._write(self.comp.picture(scene, flat, start / self.fps), f"{tag}.rgb")
        overlays = tuple(self._overlay(layer, spans) for layer in over
                         if (spans := self._spans(layer, start, frames)))
        return MotionJob(str(out), base, start, frames - (hold is not None), overlays, keyed=hold is not None)

    def _layering(self, scene: PlannedScene, start: int, frames: int) -> tuple[list[PlannedLayer], list[PlannedLayer]]:
        """Which layers Pillow flattens into the part's base picture, and which ffmpeg overlays.

        A layer that does not change during the frames goes into the base unless it
        covers a changing layer beneath it; changing layers, and those above them
        that they would show through, are overlaid frame by frame.
        """
        flat: list[PlannedLayer] = []
        over: list[PlannedLayer] = []
        moving: list[tuple[int, int, int, int]] = []  # where changing layers may be drawn
        for layer in scene.layers:
            states = [layer_state(layer, (start + i) / self.fps) for i in range(frames)]
            x0, y0, x1, y1 = self._visible(layer)
            if all(state == states[0] for state in states):
                (over if any(_overlaps((x0, y0, x1, y1), m) for m in moving) else flat).append(layer)
                continue
            dxs, dys = [state[1] for state in states], [state[2] for state in states]
            moving.append((x0 + min(dxs), y0 + min(dys), x1 + max(dxs), y1 + max(dys)))
            over.append(layer)
        return flat, over

    def _visible(self, layer: PlannedLayer) -> tuple[int, int, int, int]:
        sprite = self.comp.drawer.sprite(layer)
        left, top, right, bottom = sprite.image.getchannel("A").getbbox() or (0, 0, 0, 0)
        return sprite.x + left, sprite.y + top, sprite.x + right, sprite.y + bottom

    # segments ---------------------------------------------------------------------------------
    def _cached(self, key: str, ext: str = "mp4") -> Path | None:
        if self.cache is None:
            return None
        hit = self.cache.get(key, ext)
        if hit is None:
            return None
        local = self.tmp / f"{key[:24]}.{ext}"
        try:
            os.link(hit, local)  # a link keeps the file even if another process evicts it now
        except FileExistsError:
            pass
        except OSError:
            try:
                local.write_bytes(hit.read_bytes())
            except FileNotFoundError:
                return None
        return local

    def _keep(self, key: str, path: Path, ext: str = "mp4") -> None:
        if self.cache is not None:
            self.cache.put(key, path, ext)

    def _repeat_run(self, n: int) -> Path | None:
        return self._cached(repeat_key(n, self.size, self.fps, self.encoder))

    def _repeats(self, counts: set[int]) -> dict[int, Path]:
        """Runs of ``n`` repeating frames: cut by stream copy from a longer run, made once from grey."""
        found = {n: hit for n in counts if (hit := self._repeat_run(n)) is not None}
        cuts: dict[int, dict[int, str]] = {}  # the whole run each is cut from -> {frames: path}
        for n in sorted(counts - found.keys()):
            whole = -(-n // REPEAT_RUN) * REPEAT_RUN
            if whole not in found:
                found[whole] = self._repeat_run(whole) or self._make_repeat(whole)
            if n != whole:
                cuts.setdefault(whole, {})[n] = str(self.tmp / f"repeat-{n}.mp4")
        for whole, group in cuts.items():
            run(cut_command(str(found[whole]), group, exe=self.exe))
            for n, path in group.items():
                self._keep(repeat_key(n, self.size, self.fps, self.encoder), Path(path))
                found[n] = Path(path)
        return found

    def _make_repeat(self, n: int) -> Path:
        grey = self._write(Image.new("RGB", self.size, (128, 128, 128)), "grey.rgb")
        path = self.tmp / f"repeat-{n}.mp4"
        run(repeat_command({n: str(path)}, grey, size=self.size, fps=self.fps, options=self.options, exe=self.exe))
        if path.stat().st_size > 4096 + 400 * n:  # the encoder coded pictures instead of skips
            raise EncodeError(f"the repeat run of {n} frames came out {path.stat().st_size} bytes; "
                              "expected skipped frames only")
        self._keep(repeat_key(n, self.size, self.fps, self.encoder), path)
        return path

    def segments(self) -> list[Path]:
        """Every segment of the video in order, encoding those the cache lacks."""
        fonts = fonts_digest(self.comp.drawer.book.dir)
        order: list[tuple[str, Path | int]] = []
        jobs: dict[str, MotionJob] = {}
        paths: dict[str, Path] = {}
        repeats: set[int] = set()
        for scene in self.comp.timeline.scenes:
            for motion, hold in units(split_scene(scene)):
                key = part_key(scene, (motion, hold), encoder=self.encoder, fonts=fonts, digest=content_digest)
                if key not in paths:
                    hit = self._cached(key)
                    paths[key] = hit or self.tmp / f"part-{len(paths)}.mp4"
                    if hit is None:
                        jobs[key] = self._job(scene, motion, hold, paths[key], f"pic-{len(paths)}")
                order.append(("part", paths[key]))
                if hold is not None and hold.frames > 1:
                    order.append(("repeat", hold.frames - 1))
                    repeats.add(hold.frames - 1)
        pending = list(jobs.items())
        for start in range(0, len(pending), PARTS_PER_PROCESS):
            group = pending[start:start + PARTS_PER_PROCESS]
            run(encode_command([job for _, job in group], size=self.size, fps=self.fps, options=self.options,
                               exe=self.exe))
            for key, job in group:
                _avcc(Path(job.out))  # a file without parameter sets is no segment: refuse before caching it
                self._keep(key, Path(job.out))
        runs = self._repeats(repeats) if repeats else {}
        return [runs[item] if kind == "repeat" else item for kind, item in order]

    def audio(self) -> Path | None:
        spec, tl = self.comp.timeline.audio, self.comp.timeline
        if spec is None:
            return None
        bitrate = self.settings.audio_bitrate
        key = audio_key(content_digest(spec.path), spec.volume, spec.fade_out, tl.frames, tl.fps, bitrate)
        hit = self._cached(key, "m4a")
        if hit is not None:
            return hit
        out = self.tmp / "sound.m4a"
        run(audio_command(spec.path, str(out), duration=tl.duration, volume=spec.volume, fade_out=spec.fade_out,
                          bitrate=bitrate, exe=self.exe))
        self._keep(key, out, "m4a")
        return out


def check_joinable(segments: list[Path]) -> None:
    """Refuse to join segments whose parameter sets differ: the result would not decode."""
    first = _avcc(segments[0])
    for path in dict.fromkeys(segments):
        if _avcc(path) != first:
            raise EncodeError(f"segment {path.name} was encoded with other parameters than {segments[0].name}; "
                              "clear the segment cache if the encoder changed")


def encode_fast(comp: Compositor, out: Path, tmp_dir: Path, settings: VideoSettings,
                cache: SegmentCache | None = None) -> None:
    """Encode ``comp``'s timeline to ``out`` from cached and new segments."""
    work = (tmp_dir / "segments").resolve()  # the concat script names files from its own folder
    work.mkdir(exist_ok=True)
    encoder = FastEncoder(comp, work, settings, cache)
    segments = encoder.segments()
    check_joinable(segments)
    audio = encoder.audio()
    listing = work / "segments.ffconcat"
    listing.write_text(concat_listing(segments), encoding="utf-8")
    run(join_command(str(listing), str(out), audio=str(audio) if audio else None, exe=encoder.exe))
    shutil.rmtree(work)
