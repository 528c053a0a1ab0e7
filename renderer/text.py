"""Text: font fallback, bidirectional lines, wrapping and shrinking to fit a box.

Pillow's raqm layout shapes each run (Arabic joins, ligatures, marks); this
module splits a line into runs by which font has its characters (Noto Sans,
Noto Sans Arabic, Noto Sans Hebrew, Noto Color Emoji), orders the runs for the
paragraph's direction, and draws them on one baseline. Every character of a
name is drawn as given: nothing is dropped, escaped or reinterpreted.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

EMOJI_SIZE = 109  # Noto Color Emoji is a bitmap font drawn at this size only
EMOJI_FILE = "NotoColorEmoji.ttf"
FACES = {
    "regular": ("NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoSansHebrew-Regular.ttf", EMOJI_FILE),
    "bold": ("NotoSans-Bold.ttf", "NotoSansArabic-Bold.ttf", "NotoSansHebrew-Bold.ttf", EMOJI_FILE),
}
_NEUTRAL = {"WS", "ON", "CS", "ES", "ET", "EN", "AN", "B", "S", "BN", "NSM"}
_RTL = {"R", "AL"}
ELLIPSIS = "…"


@lru_cache(maxsize=32)
def _coverage(path: str) -> frozenset[int]:
    if not Path(path).is_file():
        return frozenset()
    from fontTools.ttLib import TTFont

    font = TTFont(path, lazy=True)
    try:
        return frozenset(font.getBestCmap() or ())
    finally:
        font.close()


@lru_cache(maxsize=256)
def _font(path: str, size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=size, layout_engine=ImageFont.Layout.RAQM)


def _sticky(ch: str) -> bool:
    """Characters that belong with whatever precedes them: marks, joiners, selectors, modifiers."""
    code = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Me", "Cf") or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F)


@dataclass(frozen=True)
class Run:
    font: str  # file name in the fonts folder
    text: str

    @property
    def emoji(self) -> bool:
        return self.font == EMOJI_FILE

    @property
    def direction(self) -> str | None:
        classes = {unicodedata.bidirectional(c) for c in self.text}
        if classes & _RTL:
            return "rtl"
        if "L" in classes:
            return "ltr"
        return None


class FontBook:
    """The vendored fonts, measured and drawn with fallback between them."""

    def __init__(self, fonts_dir: Path) -> None:
        self.dir = Path(fonts_dir)

    def _path(self, name: str) -> str:
        return str(self.dir / name)

    def covers(self, name: str, ch: str) -> bool:
        return ord(ch) in _coverage(self._path(name))

    def runs(self, text: str, weight: str) -> list[Run]:
        chain = FACES[weight]
        runs: list[list] = []
        for ch in text:
            if runs and (_sticky(ch) or (unicodedata.bidirectional(ch) in _NEUTRAL
                                         and self.covers(runs[-1][0], ch))):
                runs[-1][1].append(ch)
                continue
            font = next((f for f in chain if self.covers(f, ch)), chain[0])
            if runs and runs[-1][0] == font:
                runs[-1][1].append(ch)
            else:
                runs.append([font, [ch]])
        return [Run(font, "".join(chars)) for font, chars in runs]

    def font(self, name: str, size: float) -> ImageFont.FreeTypeFont:
        if name == EMOJI_FILE:
            return _font(self._path(name), EMOJI_SIZE)
        return _font(self._path(name), round(size * 4) / 4)

    def run_width(self, run: Run, size: float, direction: str) -> float:
        font = self.font(run.font, size)
        width = font.getlength(run.text, direction=run.direction or direction)
        return width * size / EMOJI_SIZE if run.emoji else width

    def width(self, text: str, weight: str, size: float, direction: str = "ltr") -> float:
        return sum(self.run_width(r, size, direction) for r in self.runs(text, weight))

    def metrics(self, weight: str, size: float) -> tuple[int, int]:
        return self.font(FACES[weight][0], size).getmetrics()

    def visual_runs(self, text: str, weight: str, direction: str) -> list[tuple[Run, str]]:
        """Runs in left-to-right drawing order, each with the direction to shape it in."""
        runs = self.runs(text, weight)
        dirs = [r.direction for r in runs]
        resolved = []
        for i, d in enumerate(dirs):
            if d is None:
                before = next((x for x in reversed(dirs[:i]) if x), None)
                after = next((x for x in dirs[i + 1:] if x), None)
                d = before if before == after and before else direction
            resolved.append(d)
        groups: list[tuple[str, list[Run]]] = []
        for run, d in zip(runs, resolved):
            if groups and groups[-1][0] == d:
                groups[-1][1].append(run)
            else:
                groups.append((d, [run]))
        if direction == "rtl":
            groups.reverse()
        ordered = []
        for d, members in groups:
            for run in (reversed(members) if d == "rtl" else members):
                ordered.append((run, d))
        return ordered

    def draw_line(self, canvas: Image.Image, x: float, baseline: float, text: str, weight: str, size: float,
                  color: tuple[int, int, int, int], direction: str) -> None:
        """Draw one line with its left edge at ``x``; colour text is drawn onto ``canvas`` (RGBA)."""
        runs = self.visual_runs(text, weight, direction)
        if len(runs) == 1 and not runs[0][0].emoji:
            self._draw_run(canvas, x, baseline, runs[0][0], size, color, direction)
            return
        for run, d in runs:
            self._draw_run(canvas, x, baseline, run, size, color, d)
            x += self.run_width(run, size, d)

    def _draw_run(self, canvas: Image.Image, x: float, baseline: float, run: Run, size: float,
                  color: tuple[int, int, int, int], direction: str) -> None:
        font = self.font(run.font, size)
        if run.emoji:
            _draw_emoji(canvas, font, run.text, x, baseline, size)
            return
        left, top, right, bottom = font.getbbox(run.text, anchor="ls", direction=direction)
        ox, oy = int(x + left) - 1, int(baseline + top) - 1
        size = (right - left + 3, bottom - top + 3)
        if size[0] <= 3 or size[1] <= 3:
            return
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).text((x - ox, baseline - oy), run.text, font=font, fill=255, anchor="ls",
                                  direction=direction)
        _paint(canvas, mask, color, ox, oy)


def _paint(canvas: Image.Image, mask: Image.Image, color: tuple[int, int, int, int], x: int, y: int) -> None:
    """Composite a solid colour through a coverage mask at (x, y), without dark fringes."""
    if color[3] != 255:
        mask = mask.point(lambda v: v * color[3] // 255)
    solid = Image.new("RGBA", mask.size, color[:3] + (0,))
    solid.putalpha(mask)
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + mask.width, canvas.width), min(y + mask.height, canvas.height)
    if right > left and bottom > top:
        canvas.alpha_composite(solid.crop((left - x, top - y, right - x, bottom - y)), (left, top))


def _draw_emoji(canvas: Image.Image, font: ImageFont.FreeTypeFont, text: str, x: float, baseline: float,
                size: float) -> None:
    scale = size / EMOJI_SIZE
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    if right <= left or bottom <= top:
        return
    big = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
    ImageDraw.Draw(big).text((-left, -top), text, font=font, anchor="ls", embedded_color=True)
    w, h = max(round(big.width * scale), 1), max(round(big.height * scale), 1)
    small = big.resize((w, h), Image.Resampling.LANCZOS)
    ox, oy = round(x + left * scale), round(baseline + top * scale)
    l, t = max(ox, 0), max(oy, 0)
    r, b = min(ox + w, canvas.width), min(oy + h, canvas.height)
    if r > l and b > t:
        canvas.alpha_composite(small.crop((l - ox, t - oy, r - ox, b - oy)), (l, t))


def _break_word(book: FontBook, word: str, weight: str, size: float, width: float, direction: str) -> list[str]:
    """Split a word wider than the box between characters (never inside a mark sequence)."""
    pieces, current = [], ""
    for ch in word:
        if current and not _sticky(ch) and book.width(current + ch, weight, size, direction) > width:
            pieces.append(current)
            current = ch
        else:
            current += ch
    if current:
        pieces.append(current)
    return pieces


def wrap(book: FontBook, text: str, weight: str, size: float, width: float, direction: str) -> list[str]:
    """Greedy word wrap; explicit newlines are kept; over-long words are broken."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if book.width(candidate, weight, size, direction) <= width or not candidate.strip():
                current = candidate
                continue
            if current:
                lines.append(current)
            if book.width(word, weight, size, direction) > width:
                *full, current = _break_word(book, word, weight, size, width, direction) or [""]
                lines.extend(full)
            else:
                current = word
        lines.append(current)
    return lines


@dataclass(frozen=True)
class Fitted:
    lines: tuple[str, ...]
    size: float
    line_px: float
    truncated: bool


def fit(book: FontBook, text: str, weight: str, size: float, min_size: float, width: float, height: float,
        max_lines: int, line_height: float, direction: str) -> Fitted:
    """The largest size from ``size`` down to ``min_size`` at which the text fits the box."""
    current = size
    while True:
        line_px = current * line_height
        lines = wrap(book, text, weight, current, width, direction)
        rows = min(max_lines, max(int(height / line_px + 0.05), 1))
        if len(lines) <= rows:
            return Fitted(tuple(lines), current, line_px, False)
        if current <= min_size:
            kept = lines[:rows]
            kept[-1] = _ellipsize(book, kept[-1], weight, current, width, direction)
            return Fitted(tuple(kept), current, line_px, True)
        current = max(min_size, current * 0.92)


def _ellipsize(book: FontBook, line: str, weight: str, size: float, width: float, direction: str) -> str:
    while line and book.width(line + ELLIPSIS, weight, size, direction) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS
