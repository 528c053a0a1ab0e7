"""Where each layer is at a given time, and the frame that makes: the reference picture.

``layer_state`` is the one definition of the animations; both compositors and
the preview use it, so a frame looks the same whichever engine made it.
"""

from __future__ import annotations

from collections.abc import Callable

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
        self._small: dict[tuple, tuple[Image.Image, Image.Image]] = {}  # scaled pictures, beside their source

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

    def small_frame(self, t: float, size: tuple[int, int]) -> Image.Image:
        """The frame at ``t`` composed at ``size`` from sprites scaled once: for thumbnails, not pixel-exact."""
        scene = self.timeline.scene_at(t)
        states = tuple(layer_state(layer, t - scene.start) for layer in scene.layers)
        key = ("small", size, scene.index, states)
        if key in self._recent:
            return self._recent[key]
        sx, sy = size[0] / self.timeline.size[0], size[1] / self.timeline.size[1]
        canvas = self._scaled(("bg", scene.background), size,
                              lambda: self.drawer.background(scene.background, self.timeline.size)).copy()
        for (layer, sprite), (opacity, dx, dy) in zip(self.sprites(scene), states):
            if opacity <= 0:
                continue
            small = self._scaled(("sprite", id(sprite)), (max(round(sprite.image.width * sx), 1),
                                                          max(round(sprite.image.height * sy), 1)), lambda: sprite.image)
            paste(canvas, with_opacity(small, opacity), round((sprite.x + dx) * sx), round((sprite.y + dy) * sy))
        if len(self._recent) >= 32:
            self._recent.pop(next(iter(self._recent)))
        self._recent[key] = canvas.convert("RGB")
        return self._recent[key]

    def _scaled(self, key: tuple, size: tuple[int, int], image: Callable[[], Image.Image]) -> Image.Image:
        full = (key, size)
        if full not in self._small:
            big = image()
            factor = min(big.width // max(size[0], 1), big.height // max(size[1], 1))
            big = big.reduce(factor) if factor >= 2 else big  # box first, then Lanczos: 4x cheaper
            self._small[full] = (image(), big.resize(size, Image.Resampling.LANCZOS))
        return self._small[full][1]
