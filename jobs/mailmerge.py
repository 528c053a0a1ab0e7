"""What a campaign hands the billing team per recipient: an email snippet, its picture and a QR code.

``email.html`` is a small table-laid, inline-styled block (what email clients
render reliably) with the thumbnail, a play mark drawn into it, linking to the
recipient's page, and the opt-out link every collection email must carry; ``qr.png`` is the same code the page shows, large enough to
print on a paper bill.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
from jinja2 import Environment, StrictUndefined, Template
from PIL import Image, ImageDraw

from billcast.microsite import load_catalogs, page_link, pay_link, qr_matrix
from billcast.renderer import parse_locale

QR_MODULE_PX = 10  # 10 px a module: about 2.5 cm across at 300 dpi for a typical link
QR_QUIET = 4

_EMAIL = """\
<!-- {{ brand }}: paste into the bill email. The link and pictures are this recipient's own. -->
<table role="presentation" cellpadding="0" cellspacing="0" border="0" dir="{{ dir }}" lang="{{ lang }}"
       style="border-collapse:collapse;max-width:{{ width }}px;width:100%;font-family:Arial,Helvetica,sans-serif">
  <tr>
    <td style="padding:0">
      <a href="{{ link }}" target="_blank" rel="noopener noreferrer" style="text-decoration:none">
        <img src="{{ thumb }}" width="{{ width }}" height="{{ height }}" alt="{{ watch }}"
             style="display:block;width:100%;max-width:{{ width }}px;height:auto;border:0;border-radius:8px">
      </a>
    </td>
  </tr>
  <tr>
    <td style="padding:12px 0 4px 0;font-size:16px;line-height:22px;color:#102A35">
      <a href="{{ link }}" target="_blank" rel="noopener noreferrer"
         style="color:#0E4D64;font-weight:bold;text-decoration:underline">{{ watch }}</a>
    </td>
  </tr>
  <tr>
    <td style="padding:0 0 8px 0">
      <a href="{{ link }}" target="_blank" rel="noopener noreferrer"
         style="display:inline-block;background:#F2A541;color:#08303F;font-size:16px;font-weight:bold;line-height:20px;padding:12px 20px;border-radius:6px;text-decoration:none">{{ open }}</a>
    </td>
  </tr>
  <tr>
    <td style="padding:0;font-size:12px;line-height:16px;color:#4A6572">{{ private }}</td>
  </tr>
  <tr>
    <td style="padding:4px 0 0 0;font-size:12px;line-height:16px;color:#4A6572">
      <a href="{{ optout }}" target="_blank" rel="noopener noreferrer" style="color:#4A6572;text-decoration:underline">{{ optout_text }}</a>
    </td>
  </tr>
</table>
"""


@lru_cache(maxsize=1)
def _email_template() -> Template:
    return Environment(autoescape=True, undefined=StrictUndefined).from_string(_EMAIL)


def email_html(*, locale: str, brand: str | None, link: str, thumb_url: str, size: tuple[int, int],
               optout: str) -> str:
    """The email snippet in the recipient's language, with the opt-out link; no personal data but the links."""
    messages = load_catalogs().messages(locale)
    brand = brand or messages.plain("brand")
    rtl = parse_locale(locale).character_order == "right-to-left"
    return _email_template().render(
        brand=brand, dir="rtl" if rtl else "ltr", lang=messages.language, link=link, thumb=thumb_url, width=size[0],
        height=size[1], watch=messages.text("email_watch", brand=brand).unescape(),
        open=messages.plain("email_open"), private=messages.plain("email_private"), optout=optout,
        optout_text=messages.plain("optout"))


def qr_target(public_url: str, pay_url: str, token: str, amount_due: Decimal) -> str:
    """What the code opens: the payment (``src=qr``) when something is due, else the page (as on the page)."""
    return pay_link(pay_url, token, "full", "qr") if amount_due > 0 else page_link(public_url, token)


def qr_png(data: str, path: Path) -> None:
    """A 1-bit PNG of the code with its quiet zone, ``QR_MODULE_PX`` pixels a module."""
    matrix = np.pad(qr_matrix(data), QR_QUIET)
    pixels = np.repeat(np.repeat(~matrix, QR_MODULE_PX, axis=0), QR_MODULE_PX, axis=1)
    Image.fromarray(pixels).convert("1").save(path, optimize=True)


def _play_mark(size: tuple[int, int], rtl: bool) -> Image.Image:
    """A round play button in the lower corner where reading starts, clear of the picture's middle."""
    w, h = size
    mark = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(mark)
    r = max(round(min(w, h) * 0.12), 8)
    margin = max(round(r * 0.5), 4)
    cx = w - margin - r if rtl else margin + r
    cy = h - margin - r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(8, 48, 63, 215), outline=(255, 255, 255, 255),
                 width=max(r // 9, 2))
    s = r * 0.45
    draw.polygon([(cx - s * 0.7, cy - s), (cx - s * 0.7, cy + s), (cx + s, cy)], fill=(255, 255, 255, 255))
    return mark


def email_gif(thumb: Path, out: Path, *, rtl: bool = False) -> tuple[int, int]:
    """The render's looping thumbnail with a play mark over every frame; returns its size."""
    with Image.open(thumb) as gif:
        size = gif.size
        durations, frames = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info.get("duration", 100))
            frames.append(gif.convert("RGB"))
    mark = _play_mark(size, rtl)
    marked = [Image.alpha_composite(f.convert("RGBA"), mark).convert("RGB") for f in frames]
    half = (max(size[0] // 2, 1), max(size[1] // 2, 1))
    strip = Image.new("RGB", (half[0], half[1] * len(marked)))  # the palette sees every frame, at half size
    for i, frame in enumerate(marked):
        strip.paste(frame.resize(half, Image.Resampling.BOX), (0, i * half[1]))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    gif_frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in marked]
    gif_frames[0].save(out, "GIF", save_all=True, append_images=gif_frames[1:], duration=durations, loop=0,
                       optimize=False, disposal=1)
    return size
