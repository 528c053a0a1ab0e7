"""Pillow draws each planned layer once, into a sprite; compositors only move and fade them.

Shapes are drawn at 4x and scaled down, so edges are smooth at any size.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from .errors import AssetError
from .text import FontBook, fit, wrap
from .timeline import (RGBA, BackgroundSpec, ChartSpec, ImageSpec, PlannedLayer, QRSpec, RectSpec, TableSpec,
                       TextSpec)

SUPER = 4


@dataclass(frozen=True)
class Sprite:
    image: Image.Image  # RGBA
    x: int  # where its top-left corner goes, before any animation
    y: int
    truncated: bool = False  # a text that did not fit even at its minimum size


def load_image(path: str) -> Image.Image:
    """An asset image, or an error that names it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGBA")
    except FileNotFoundError:
        raise AssetError("asset not found", path=path) from None
    except (OSError, UnidentifiedImageError) as exc:
        raise AssetError(f"asset cannot be read as an image ({exc})", path=path) from None


def background(spec: BackgroundSpec, size: tuple[int, int]) -> Image.Image:
    """The scene's background as an RGB image."""
    w, h = size
    if spec.color is not None:
        return Image.new("RGB", size, spec.color[:3])
    if spec.gradient is not None:
        import numpy as np

        rad = math.radians(spec.angle)
        # angle 0 runs left to right, 90 top to bottom
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        proj = xs * math.cos(rad) + ys * math.sin(rad)
        lo, hi = proj.min(), proj.max()
        k = ((proj - lo) / max(hi - lo, 1e-6))[..., None]
        a = np.array(spec.gradient[0][:3], np.float32)
        b = np.array(spec.gradient[1][:3], np.float32)
        return Image.fromarray(np.clip(a + (b - a) * k + 0.5, 0, 255).astype(np.uint8))
    img = load_image(spec.image or "")
    return _cover(img, size).convert("RGB")


def _cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    w, h = size
    scale = max(w / img.width, h / img.height)
    resized = img.resize((max(round(img.width * scale), w), max(round(img.height * scale), h)),
                         Image.Resampling.LANCZOS)
    left, top = (resized.width - w) // 2, (resized.height - h) // 2
    return resized.crop((left, top, left + w, top + h))


def _pixel_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = round(x), round(y)
    return x0, y0, max(round(x + w) - x0, 1), max(round(y + h) - y0, 1)


class _Shared:
    """Pictures kept between renders in one process, least recently used dropped past a byte budget.

    A batch renders many customers with the same intro, logo and fixed texts:
    those are drawn once per process, not once per customer.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()

    def get(self, key: tuple, make: Callable[[], object], size: Callable[[object], int]) -> object:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        value = make()
        cost = size(value)
        self._items[key] = (value, cost)
        self.used += cost
        while self.used > self.budget and len(self._items) > 1:
            _, (_, freed) = self._items.popitem(last=False)
            self.used -= freed
        return value


_SHARED = _Shared(budget=160 * 1024 * 1024)


def _bytes(item: object) -> int:
    image = item.image if isinstance(item, Sprite) else item
    return image.width * image.height * len(image.getbands())


def _file_stamp(path: str | None) -> tuple[int, int] | None:
    """Size and modification time, so an edited asset is drawn again."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Drawer:
    """Draws sprites for layers and backgrounds; each is drawn once per process while it is in use."""

    def __init__(self, fonts_dir: Path) -> None:
        self.book = FontBook(fonts_dir)

    def background(self, spec: BackgroundSpec, size: tuple[int, int]) -> Image.Image:
        """The scene's background, RGBA (opaque). Callers copy it before drawing on it."""
        key = ("background", spec, size, _file_stamp(spec.image))
        return _SHARED.get(key, lambda: background(spec, size).convert("RGBA"), _bytes)

    def sprite(self, layer: PlannedLayer) -> Sprite:
        spec = layer.spec
        stamp = _file_stamp(spec.path) if isinstance(spec, ImageSpec) else None
        key = ("sprite", str(self.book.dir), spec, layer.box, stamp)
        return _SHARED.get(key, lambda: self._draw(layer), _bytes)

    def _draw(self, layer: PlannedLayer) -> Sprite:
        spec = layer.spec
        x, y, w, h = _pixel_box(layer.box)
        if isinstance(spec, TextSpec):
            return self._text(spec, x, y, w, h)
        if isinstance(spec, ImageSpec):
            return Sprite(_image(spec, w, h), x, y)
        if isinstance(spec, RectSpec):
            return Sprite(_rect(spec, w, h), x, y)
        if isinstance(spec, ChartSpec):
            return Sprite(self._chart(spec, w, h), x, y)
        if isinstance(spec, TableSpec):
            return self._table(spec, x, y, w, h)
        if isinstance(spec, QRSpec):
            return Sprite(_qr(spec, w, h), x, y)
        raise TypeError(f"cannot draw {spec!r}")

    def _text(self, spec: TextSpec, x: int, y: int, w: int, h: int) -> Sprite:
        book = self.book
        fitted = fit(book, spec.text, spec.weight, spec.size, spec.min_size, w, h, spec.max_lines,
                     spec.line_height, spec.direction)
        pad = math.ceil(fitted.size * 0.5)
        canvas = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
        ascent, descent = book.metrics(spec.weight, fitted.size)
        block = len(fitted.lines) * fitted.line_px
        top = {"top": 0.0, "middle": (h - block) / 2, "bottom": h - block}[spec.valign]
        for i, line in enumerate(fitted.lines):
            width = book.width(line, spec.weight, fitted.size, spec.direction)
            left = {"left": 0.0, "center": (w - width) / 2, "right": w - width}[spec.align]
            baseline = top + i * fitted.line_px + (fitted.line_px - (ascent + descent)) / 2 + ascent
            book.draw_line(canvas, pad + left, pad + baseline, line, spec.weight, fitted.size, spec.color,
                           spec.direction)
        return Sprite(canvas, x - pad, y - pad, fitted.truncated)

    def _table_layout(self, spec: TableSpec, w: int, h: int) -> tuple[float, float, list[list[str]], bool]:
        """The largest size at which every row fits: labels wrap to two lines, values stay whole."""
        size = spec.size
        while True:
            value_w = max((self.book.width(v, "bold", size, spec.direction) for _, v in spec.rows), default=0)
            label_w = max(w - value_w - size, size * 4)
            labels = [wrap(self.book, label, spec.weight, size, label_w, spec.direction) for label, _ in spec.rows]
            height = sum(len(lines) * size * 1.3 + size * 0.8 for lines in labels)
            fits = height <= h and all(len(lines) <= 2 for lines in labels)
            if fits or size <= spec.min_size:
                return size, label_w, labels, not fits
            size = max(spec.min_size, size * 0.92)

    def _table(self, spec: TableSpec, x: int, y: int, w: int, h: int) -> Sprite:
        size, label_w, labels, truncated = self._table_layout(spec, w, h)
        pad = math.ceil(size * 0.5)
        canvas = Image.new("RGBA", (w + 2 * pad, h + 2 * pad), (0, 0, 0, 0))
        ascent, _ = self.book.metrics(spec.weight, size)
        rtl = spec.direction == "rtl"
        top = 0.0
        rules = ImageDraw.Draw(canvas)
        for i, ((_, value), lines) in enumerate(zip(spec.rows, labels)):
            row_h = len(lines) * size * 1.3 + size * 0.8
            if top + row_h > h + 0.5:
                truncated = True
                break
            for j, line in enumerate(lines):
                lw = self.book.width(line, spec.weight, size, spec.direction)
                left = w - lw if rtl else 0
                self.book.draw_line(canvas, pad + left, pad + top + size * 0.4 + ascent * 1.0 + j * size * 1.3, line,
                                    spec.weight, size, spec.color, spec.direction)
            vw = self.book.width(value, "bold", size, spec.direction)
            self.book.draw_line(canvas, pad + (0 if rtl else w - vw), pad + top + size * 0.4 + ascent, value, "bold",
                                size, spec.value_color, spec.direction)
            top += row_h
            if spec.rule_color is not None and i < len(spec.rows) - 1:
                rules.line((pad, pad + top, pad + w, pad + top), fill=spec.rule_color, width=max(round(size / 24), 1))
        return Sprite(canvas, x - pad, y - pad, truncated)

    def _chart(self, spec: ChartSpec, w: int, h: int) -> Image.Image:
        book = self.book
        canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        if not spec.bars:
            return canvas
        n = len(spec.bars)
        slot = w / n
        label_size = legend_size = max(h * 0.07, 6)
        widest = max(book.width(b.label, "bold", label_size, spec.direction) for b in spec.bars)
        if widest > slot * 0.92:
            label_size = max(label_size * slot * 0.92 / widest, 4)
        caption_size = max(h * 0.075, 6)
        legend_h = legend_size * 2.2 if (spec.legend_current or spec.legend_last_year) else 0
        top = legend_h + caption_size * 1.6
        bottom = h - label_size * 1.8
        bar_w = slot * 0.64
        peak = max(b.value for b in spec.bars) or 1.0
        colors = {"current": spec.current_color, "last_year": spec.last_year_color, "other": spec.bar_color}
        positions = []
        for i, bar in enumerate(spec.bars):
            cx = slot * (i + 0.5) if spec.direction == "ltr" else w - slot * (i + 0.5)
            bh = max((bottom - top) * bar.value / peak, 0)
            y0 = bottom - bh
            positions.append((cx, y0))
            if bh >= 1:
                shape = _rounded((bar_w, bh), min(bar_w * 0.22, bh), colors[bar.role], top_only=True)
                canvas.alpha_composite(shape, (round(cx - bar_w / 2), round(y0)))
        axis = max(round(h * 0.006), 1)
        ImageDraw.Draw(canvas).rectangle((0, round(bottom) + 1, w, round(bottom) + axis), fill=spec.bar_color)
        if legend_h:
            for x, color, _ in self._legend_layout(spec, w, legend_size):
                canvas.alpha_composite(_rounded((legend_size, legend_size), legend_size * 0.25, color),
                                       (round(x), round(legend_size * 0.35)))
            self._legend_text(canvas, spec, w, legend_size)
        for bar, (cx, y0) in zip(spec.bars, positions):
            lw = book.width(bar.label, "regular", label_size, spec.direction)
            color = spec.text_color if bar.role != "other" else spec.text_color[:3] + (200,)
            book.draw_line(canvas, cx - lw / 2, h - label_size * 0.45, bar.label,
                           "bold" if bar.role != "other" else "regular", label_size, color, spec.direction)
            if bar.caption:
                cw = book.width(bar.caption, "bold", caption_size, spec.direction)
                left = min(max(cx - cw / 2, 0), w - cw)
                book.draw_line(canvas, left, y0 - caption_size * 0.45, bar.caption, "bold", caption_size,
                               spec.text_color, spec.direction)
        return canvas

    def _legend_items(self, spec: ChartSpec) -> list[tuple[RGBA, str]]:
        items = [(spec.current_color, spec.legend_current)]
        if spec.legend_last_year:
            items.append((spec.last_year_color, spec.legend_last_year))
        items = [(c, t) for c, t in items if t]
        return items if spec.direction == "ltr" else items[::-1]

    def _legend_layout(self, spec: ChartSpec, w: int, size: float) -> list[tuple[float, RGBA, str]]:
        x = 0.0
        out = []
        for color, text in self._legend_items(spec):
            out.append((x, color, text))
            x += size * 1.6 + self.book.width(text, "regular", size, spec.direction) + size * 1.6
        if spec.direction == "rtl":
            shift = w - x + size * 1.6
            out = [(px + shift, c, t) for px, c, t in out]
        return out

    def _legend_text(self, canvas: Image.Image, spec: ChartSpec, w: int, size: float) -> None:
        for x, _, text in self._legend_layout(spec, w, size):
            self.book.draw_line(canvas, x + size * 1.5, size * 1.2, text, "regular", size, spec.text_color,
                                spec.direction)


def _image(spec: ImageSpec, w: int, h: int) -> Image.Image:
    img = load_image(spec.path)
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if spec.fit == "stretch":
        return img.resize((w, h), Image.Resampling.LANCZOS)
    if spec.fit == "cover":
        return _cover(img, (w, h))
    scale = min(w / img.width, h / img.height)
    size = (max(round(img.width * scale), 1), max(round(img.height * scale), 1))
    resized = img.resize(size, Image.Resampling.LANCZOS)
    left = {"left": 0, "center": (w - size[0]) // 2, "right": w - size[0]}[spec.align]
    canvas.alpha_composite(resized, (left, (h - size[1]) // 2))
    return canvas


def _rounded(size: tuple[float, float], radius: float, fill: RGBA, top_only: bool = False) -> Image.Image:
    """A smooth rounded rectangle of ``size`` (drawn at 4x, scaled down)."""
    w, h = max(round(size[0]), 1), max(round(size[1]), 1)
    big = Image.new("RGBA", (w * SUPER, h * SUPER), (0, 0, 0, 0))
    ImageDraw.Draw(big).rounded_rectangle((0, 0, w * SUPER - 1, h * SUPER - 1), radius=radius * SUPER, fill=fill,
                                          corners=(True, True, False, False) if top_only else None)
    return big.reduce(SUPER)


def _rect(spec: RectSpec, w: int, h: int) -> Image.Image:
    big = Image.new("RGBA", (w * SUPER, h * SUPER), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    radius = min(spec.radius, w / 2, h / 2) * SUPER
    width = round(spec.stroke_width * SUPER) if spec.stroke is not None else 0
    draw.rounded_rectangle((0, 0, w * SUPER - 1, h * SUPER - 1), radius=radius, fill=spec.fill,
                           outline=spec.stroke if width else None, width=width)
    return big.reduce(SUPER)


def _qr(spec: QRSpec, w: int, h: int) -> Image.Image:
    import numpy as np
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(spec.data)
    code.make(fit=True)
    matrix = np.array(code.get_matrix(), dtype=bool)
    side = min(w, h)
    modules = matrix.shape[0]
    cell = max(side // modules, 1)
    pixels = np.where(matrix[..., None], np.array(spec.color, np.uint8), np.array(spec.background, np.uint8))
    qr = Image.fromarray(pixels.astype(np.uint8)).resize((modules * cell, modules * cell),
                                                                 Image.Resampling.NEAREST)
    if qr.width > side:
        qr = qr.resize((side, side), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    canvas.alpha_composite(qr, ((w - qr.width) // 2, (h - qr.height) // 2))
    return canvas
