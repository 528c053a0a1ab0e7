"""How the fast engine cuts a planned video into segments, and what names each one in the cache.

Pure: no processes, no files but the digests the caller hands in.

A scene is cut into *parts*: a **motion** part where some layer moves or fades
(ffmpeg composes and encodes every frame), and a **hold** where nothing
changes for at least ``MIN_HOLD`` frames (one keyframe of the still picture,
then frames that only repeat it). Each part is a segment that starts on a
keyframe; the video is the segments joined by stream copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from .compose import layer_state
from .timeline import RENDERER_VERSION, ImageSpec, PlannedScene

ENGINE_VERSION = "fast-2"
MIN_HOLD = 10  # frames: shorter still stretches are cheaper encoded than given their own keyframe


@dataclass(frozen=True)
class Part:
    kind: str  # motion | hold
    start: int  # first frame, counted from the scene's start
    frames: int


def frame_states(scene: PlannedScene) -> list[tuple]:
    """Every frame's layer states (opacity and offset), the thing that decides what it looks like."""
    return [tuple(layer_state(layer, i / scene.fps) for layer in scene.layers) for i in range(scene.frames)]


def split_scene(scene: PlannedScene, min_hold: int | None = None) -> tuple[Part, ...]:
    """The scene's motion and hold parts, in order, covering every frame once."""
    min_hold = min_hold or MIN_HOLD
    states = frame_states(scene)
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, scene.frames + 1):
        if i == scene.frames or states[i] != states[start]:
            runs.append((start, i - start))
            start = i
    parts: list[Part] = []
    for first, count in runs:
        kind = "hold" if count >= min_hold else "motion"
        if parts and kind == "motion" and parts[-1].kind == "motion":
            last = parts.pop()
            parts.append(Part("motion", last.start, last.frames + count))
        else:
            parts.append(Part(kind, first, count))
    return tuple(parts)


def _portable(scene: PlannedScene, digest: Callable[[str], str]) -> str:
    """The scene's pixels-shaping content with asset paths replaced by their contents' digests."""
    layers = tuple(replace(layer, spec=replace(layer.spec, path=digest(layer.spec.path)))
                   if isinstance(layer.spec, ImageSpec) else layer for layer in scene.layers)
    background = scene.background
    if background.image is not None:
        background = replace(background, image=digest(background.image))
    return repr((scene.size, scene.fps, scene.frames, background, layers))


def part_key(scene: PlannedScene, part: Part | tuple[Part | None, ...], *, encoder: tuple, fonts: str,
             digest: Callable[[str], str]) -> str:
    """The cache key of a part (or parts joined in one segment): everything that shapes its pixels and
    bytes, nothing of where it sits."""
    text = repr((ENGINE_VERSION, RENDERER_VERSION, encoder, fonts, _portable(scene, digest), part))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def repeat_key(frames: int, size: tuple[int, int], fps: int, encoder: tuple[str, ...]) -> str:
    """The cache key of a run of frames that repeat their predecessor (independent of any picture)."""
    text = repr((ENGINE_VERSION, "repeat", frames, size, fps, encoder))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audio_key(path_digest: str, volume: float, fade_out: float, frames: int, fps: int, bitrate: str) -> str:
    text = repr((ENGINE_VERSION, "audio", path_digest, volume, fade_out, frames, fps, bitrate))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
