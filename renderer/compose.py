"""Where each layer is at a given time, and the frame that makes: the reference picture.

``layer_state`` is the one definition of the animations; both compositors and
the preview use it, so a frame looks the same whichever engine made it.
"""

from __future__ import annotations

from PIL import Image

from .draw import Drawer, Sprite
from .timeline import PlannedLayer, PlannedScene, Timeline


def _ease_out(p: float) -> float:
    return 1 - (1 - p) ** 3


def _progress(t: float, start: float, duration: float) -> float:
    if t <= start:
        return 0.0
    if t >= start + duration:
        return 1.0
    return (t - start) / duration


def layer_state(layer: PlannedLayer, t: float) -> tuple[float, int, int]:
    """Opacity and whole-pixel offset of a layer ``t`` seconds into its scene."""
    opacity = layer.opacity
    dx = dy = 0.0
    for anim in layer.anims:
        p = _progress(t, anim.start, anim.duration)
        if anim.type == "fade_in":
            opacity *= p
        elif anim.type == "fade_out":
            opacity *= 1 - p
        else:
            k = 1 - _ease_out(p)
            dx += anim.offset[0] * k
            dy += anim.offset[1] * k
    return opacity, round(dx), round(dy)


def settle_time(scene: PlannedScene) -> float:
    """Seconds into the scene after which nothing moves or fades any more (until a fade out)."""
    ends = [a.start + a.duration for layer in scene.layers for a in layer.anims if a.type != "fade_out"]
    return max(ends, default=0.0)


def with_opacity(image: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1:
        return image
    faded = image.copy()
    faded.putalpha(image.getchannel("A").point(lambda v: round(v * opacity)))
    return faded


def paste(canvas: Image.Image, sprite: Image.Image, x: int, y: int) -> None:
    """Alpha-composite ``sprite`` at (x, y), clipped to the canvas."""
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + sprite.width, canvas.width), min(y + sprite.height, canvas.height)
    if right <= left or bottom <= top:
        return
    part = sprite.crop((left - x, top - y, right - x, bottom - y))
    canvas.alpha_composite(part, (left, top))


class Compositor:
    """Frames of one timeline, drawn with Pillow; used for previews, posters and thumbnails."""

    def __init__(self, timeline: Timeline, drawer: Drawer) -> None:
        self.timeline = timeline
        self.drawer = drawer
        self._recent: dict[tuple, Image.Image] = {}  # a still stretch is composed once

    def sprites(self, scene: PlannedScene) -> list[tuple[PlannedLayer, Sprite]]:
        return [(layer, self.drawer.sprite(layer)) for layer in scene.layers]

    def frame(self, t: float) -> Image.Image:
        """The RGB frame at ``t`` seconds (shared with later calls for the same picture: copy to change it)."""
        scene = self.timeline.scene_at(t)
        local = t - scene.start
        states = tuple(layer_state(layer, local) for layer in scene.layers)
        key = (scene.index, states)
        if key in self._recent:
            return self._recent[key]
        canvas = self.drawer.background(scene.background, self.timeline.size).copy()
        for (layer, sprite), (opacity, dx, dy) in zip(self.sprites(scene), states):
            if opacity <= 0:
                continue
            paste(canvas, with_opacity(sprite.image, opacity), sprite.x + dx, sprite.y + dy)
        if len(self._recent) >= 8:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = canvas.convert("RGB")
        return self._recent[key]

    def frame_index(self, index: int) -> Image.Image:
        return self.frame(index / self.timeline.fps)
