#!/usr/bin/env python3
"""Generate the Lumen demo-brand images in assets/images/.

Lumen is the fictional energy utility used by Billcast's demos. This script
draws every brand image from code so they can be regenerated exactly:

    logo.png       960x240  wordmark (amber mark + white "Lumen"), for dark teal backgrounds
    logo_dark.png  960x240  the same with the word in teal, for light backgrounds
    mark.png       512x512  the mark alone
    pattern.png    1280x720 subtle teal scene background (gradient, soft rays, faint discs)

Everything is drawn at 4x and downscaled with LANCZOS for smooth edges. The
output is deterministic (no randomness except a fixed-seed dither in the
pattern). Run from anywhere:

    .venv/bin/python assets/tools/make_brand.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ASSETS = Path(__file__).resolve().parents[1]
FONTS = ASSETS / "fonts"
OUT = ASSETS / "images"

SS = 4  # supersampling factor

# Brand palette
TEAL = (0x0E, 0x4D, 0x64)
TEAL_DARK = (0x08, 0x30, 0x3F)
AMBER = (0xF2, 0xA5, 0x41)
LIGHT_BG = (0xF5, 0xF7, 0xFA)
TEXT_DARK = (0x10, 0x2A, 0x35)
WHITE = (0xFF, 0xFF, 0xFF)

WORD = "Lumen"


# --------------------------------------------------------------------------- mark

def _capsule(d: ImageDraw.ImageDraw, p0, p1, width: float, fill) -> None:
    """A straight stroke with round caps from p0 to p1 (cap centres)."""
    (x0, y0), (x1, y1) = p0, p1
    a = math.atan2(y1 - y0, x1 - x0)
    nx, ny = -math.sin(a) * width / 2, math.cos(a) * width / 2
    d.polygon([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)],
              fill=fill)
    h = width / 2
    d.ellipse((x0 - h, y0 - h, x0 + h, y0 + h), fill=fill)
    d.ellipse((x1 - h, y1 - h, x1 + h, y1 + h), fill=fill)


def draw_mark(size: int, color=AMBER) -> Image.Image:
    """The Lumen mark: a sun rising over three horizon lines.

    A half disc, five rounded rays fanning above it and three horizon bars of
    decreasing length below, all in one colour on a transparent square of
    ``size`` pixels (the caller supersamples), returned cropped to its ink.
    """
    s = size
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    fill = color + (255,)
    cx = s / 2
    horizon = s * 0.60          # flat edge of the half disc
    R = s * 0.255               # sun radius

    # Half disc (upper half only).
    d.pieslice((cx - R, horizon - R, cx + R, horizon + R), start=180, end=360, fill=fill)

    # Rays: five strokes at 30 degree steps, the vertical one a touch longer.
    ray_w = s * 0.058
    gap = s * 0.075
    for i, deg in enumerate((-150, -120, -90, -60, -30)):
        a = math.radians(deg)
        length = s * (0.120 if deg == -90 else 0.100)
        r0 = R + gap + ray_w / 2
        r1 = r0 + length
        _capsule(d, (cx + r0 * math.cos(a), horizon + r0 * math.sin(a)),
                 (cx + r1 * math.cos(a), horizon + r1 * math.sin(a)), ray_w, fill)

    # Horizon bars, centred, getting shorter and thinner towards the bottom.
    bars = ((0.84, 0.058), (0.60, 0.050), (0.36, 0.042))   # (length, thickness) x size
    y = horizon + s * 0.065
    for length, thick in bars:
        half = s * length / 2 - s * thick / 2
        _capsule(d, (cx - half, y), (cx + half, y), s * thick, fill)
        y += s * thick + s * 0.040

    # Return the drawing cropped tight to its ink; callers size and place it.
    bbox = img.getbbox()
    assert bbox is not None
    return img.crop(bbox)


def fit(img: Image.Image, box_w: float, box_h: float) -> Image.Image:
    """Scale ``img`` (keeping aspect) to fit inside box_w x box_h."""
    k = min(box_w / img.width, box_h / img.height)
    return img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))),
                      Image.Resampling.LANCZOS)


def downscale(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """LANCZOS downscale of an RGBA image without dark fringes.

    Resampling premultiplied colour avoids the transparent-black bleed that a
    straight RGBA resize produces at anti-aliased edges.
    """
    pm = img.convert("RGBa").resize(size, Image.Resampling.LANCZOS)
    return pm.convert("RGBA")


def make_mark(path: Path, px: int = 512, margin: float = 0.08) -> None:
    S = px * SS
    ink = fit(draw_mark(S), S * (1 - 2 * margin), S * (1 - 2 * margin))
    big = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    big.alpha_composite(ink, ((S - ink.width) // 2, (S - ink.height) // 2))
    downscale(big, (px, px)).save(path, optimize=True)


# --------------------------------------------------------------------------- logo

def make_logo(path: Path, word_color, w: int = 960, h: int = 240) -> None:
    W, H = w * SS, h * SS
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))

    # Mark on the left, vertically centred, with a small margin.
    mark = fit(draw_mark(H), W, H * 0.70)
    mx = round(H * 0.10)
    my = (H - mark.height) // 2
    img.alpha_composite(mark, (mx, my))

    # Wordmark: Noto Sans Bold, sized so the cap height is ~46% of the canvas.
    font_path = FONTS / "NotoSans-Bold.ttf"
    size = 100
    font = ImageFont.truetype(str(font_path), size * SS)
    cap = font.getbbox("L", anchor="ls")
    cap_h = -cap[1]
    size_px = round(size * SS * (H * 0.46) / cap_h)
    font = ImageFont.truetype(str(font_path), size_px)
    cap_h = -font.getbbox("L", anchor="ls")[1]

    # Slight positive tracking reads calmer at display size.
    tracking = round(size_px * 0.01)
    x = mx + mark.width + round(H * 0.17)
    baseline = round(H / 2 + cap_h / 2)  # centre the cap height on the mark's centre
    d = ImageDraw.Draw(img)
    for ch in WORD:
        d.text((x, baseline), ch, font=font, fill=word_color + (255,), anchor="ls")
        x += font.getlength(ch) + tracking

    # Trim to content so the logo sits tight in its box, then centre it in w x h.
    bbox = img.getbbox()
    assert bbox is not None
    content_w = bbox[2] - bbox[0]
    left = (W - content_w) // 2
    out = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    out.alpha_composite(img.crop((bbox[0], 0, bbox[2], H)), (left, 0))
    if content_w > W:
        raise SystemExit(f"logo content {content_w}px wider than canvas {W}px")
    downscale(out, (w, h)).save(path, optimize=True)


# --------------------------------------------------------------------------- pattern

def make_pattern(path: Path, w: int = 1280, h: int = 720) -> None:
    """Teal diagonal gradient with soft light rays and a few large faint discs.

    The light source sits just off the top-right corner, echoing the sun mark.
    Kept low-contrast so text and charts placed over it stay readable; the
    lower-left two thirds are nearly plain gradient.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Diagonal gradient: primary teal at top-right -> darker teal at bottom-left.
    t = ((w - xx) / w * 0.55 + yy / h * 0.45)
    t = np.clip(t, 0, 1)
    t = t * t * (3 - 2 * t)  # smoothstep
    c0 = np.array(TEAL, dtype=np.float64)
    c1 = np.array(TEAL_DARK, dtype=np.float64)
    rgb = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]

    # Light source just beyond the top-right corner, echoing the rising sun.
    sx, sy = w * 1.02, -h * 0.18
    dx, dy = xx - sx, yy - sy
    r = np.hypot(dx, dy)
    ang = np.arctan2(dy, dx)

    # Soft radial glow near the source.
    glow = np.exp(-(r / (w * 0.60)) ** 2)

    # Broad, soft light rays: a smooth periodic function of angle that fades
    # out with distance, so the rays dissolve before reaching the lower left.
    rays = (0.5 + 0.5 * np.cos(ang * 14.0)) ** 3
    rays *= np.exp(-(r / (w * 0.85)) ** 2)

    # A few large, faint translucent discs, like out-of-focus light. They add
    # up where they overlap, so the overlaps read as slightly brighter lenses.
    discs = np.zeros_like(xx)
    for cx_, cy_, rad, alpha in ((1.06, 0.12, 0.42, 1.0),   # big, cut by the top-right corner
                                 (0.80, 0.98, 0.20, 0.8),   # medium, rising from the bottom edge
                                 (0.60, 0.16, 0.065, 0.9)):  # small accent
        dist = np.hypot(xx - cx_ * w, yy - cy_ * h) - rad * w
        edge = np.clip(0.5 - dist / 1.5, 0, 1)           # ~1.5 px anti-aliased edge
        discs += edge * alpha

    light = np.array((0x3F, 0x9C, 0xB5), dtype=np.float64)  # lighter teal tint
    amount = glow * 0.20 + rays * 0.05 + discs * 0.05
    rgb = rgb * (1 - amount[..., None]) + light[None, None, :] * amount[..., None]

    # Mild vignette towards the bottom-left to seat lower-thirds.
    vig = np.clip((yy / h) * 0.10 * (1 - xx / w), 0, 1)
    rgb = rgb * (1 - vig[..., None])

    # Fixed-seed triangular dither to prevent banding in video encodes.
    rng = np.random.default_rng(20240501)
    dither = rng.random((h, w, 1)) - rng.random((h, w, 1))
    rgb = np.clip(np.round(rgb + dither * 0.75), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, optimize=True)


# --------------------------------------------------------------------------- main

def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make_mark(OUT / "mark.png")
    make_logo(OUT / "logo.png", WHITE)
    make_logo(OUT / "logo_dark.png", TEAL)
    make_pattern(OUT / "pattern.png")
    for name in ("logo.png", "logo_dark.png", "mark.png", "pattern.png"):
        p = OUT / name
        with Image.open(p) as im:
            print(f"{p.relative_to(ASSETS.parent)}  {im.size[0]}x{im.size[1]} {im.mode}  "
                  f"{p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
