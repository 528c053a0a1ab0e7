"""Where each layer is at a given time, and the frame that makes: the reference picture.

``layer_state`` is the one definition of the animations; both compositors and
the preview use it, so a frame looks the same whichever engine made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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

    def picture(self, scene: PlannedScene, layers: Iterable[PlannedLayer], local: float) -> Image.Image:
        """The scene's background with ``layers`` (in order) as they are ``local`` seconds into it, RGB."""
        canvas = self.drawer.background(scene.background, self.timeline.size).copy()
        for layer in layers:
            opacity, dx, dy = layer_state(layer, local)
            if opacity > 0:
                sprite = self.drawer.sprite(layer)
                paste(canvas, with_opacity(sprite.image, opacity), sprite.x + dx, sprite.y + dy)
        return canvas.convert("RGB")

    def _remember(self, key: tuple, make: Callable[[], Image.Image]) -> Image.Image:
        if key not in self._recent:
            if len(self._recent) >= 32:
                self._recent.pop(next(iter(self._recent)))
            self._recent[key] = make()
        return self._recent[key]

    def frame(self, t: float) -> Image.Image:
        """The RGB frame at ``t`` seconds (shared with later calls for the same picture: copy to change it)."""
        scene = self.timeline.scene_at(t)
        local = t - scene.start
        states = tuple(layer_state(layer, local) for layer in scene.layers)
        return self._remember((scene.index, states), lambda: self.picture(scene, scene.layers, local))

    def frame_index(self, index: int) -> Image.Image:
        return self.frame(index / self.timeline.fps)

    def small_frame(self, t: float, size: tuple[int, int]) -> Image.Image:
        """The frame at ``t`` composed at ``size`` from sprites scaled once: for thumbnails, not pixel-exact."""
        scene = self.timeline.scene_at(t)
        states = tuple(layer_state(layer, t - scene.start) for layer in scene.layers)
        return self._remember(("small", size, scene.index, states), lambda: self._small_picture(scene, states, size))

    def _small_picture(self, scene: PlannedScene, states: tuple, size: tuple[int, int]) -> Image.Image:
        sx, sy = size[0] / self.timeline.size[0], size[1] / self.timeline.size[1]
        canvas = self._scaled(("bg", scene.background), size,
                              self.drawer.background(scene.background, self.timeline.size)).copy()
        for (layer, sprite), (opacity, dx, dy) in zip(self.sprites(scene), states):
            if opacity > 0:
                small = self._scaled(("sprite", id(sprite)), (max(round(sprite.image.width * sx), 1),
                                                              max(round(sprite.image.height * sy), 1)), sprite.image)
                paste(canvas, with_opacity(small, opacity), round((sprite.x + dx) * sx), round((sprite.y + dy) * sy))
        return canvas.convert("RGB")

    def _scaled(self, key: tuple, size: tuple[int, int], source: Image.Image) -> Image.Image:
        """``source`` resized to ``size`` once (kept beside its source, so the ``id`` in ``key`` stays its own)."""
        full = (key, size)
        if full not in self._small:
            factor = min(source.width // max(size[0], 1), source.height // max(size[1], 1))
            reduced = source.reduce(factor) if factor >= 2 else source  # box first, then Lanczos: 4x cheaper
            self._small[full] = (source, reduced.resize(size, Image.Resampling.LANCZOS))
        return self._small[full][1]
