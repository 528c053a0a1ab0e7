"""Web fonts cut down to the characters a page shows: WOFF2 subsets of the packaged Noto fonts.

The whole Noto fonts are about 1.5 MB; a page needs a few hundred glyphs of
them. ``web_fonts`` takes the characters of a page and returns, for each face
that has any of them, a WOFF2 subset named by the hash of its bytes, so that
the same characters always give the same file and identical subsets are shared.

The subsets keep the layout features a browser applies by itself (fontTools'
default list: ``ccmp``, ``locl``, ``init``/``medi``/``fina``/``isol``,
``rlig``, ``liga``, ``kern``, ``mark``/``mkmk``...) plus ``tnum``, which the
stylesheet asks for; the subsetter closes the glyph set over GSUB, so every
contextual Arabic form and ligature those characters can take is kept. The
fonts' own hinting is dropped (phones do not use it). Every subset of a face
also keeps the few characters FreeType's light auto-hinter (Chromium on Linux)
reads the script's heights from, and the Latin ligatures' code points: without
them it draws some strokes a fraction of a pixel differently than with the whole
font; with them a page draws pixel for pixel as with the whole fonts
(tests/test_browser_site.py). Name records 0-6, 13 and 14 keep the copyright and
the OFL notice inside each file.

The packaged fonts are read once per process; each subset is made once per
process for a set of characters (cached by the set), so a campaign pays for a
subset once per distinct set, not per page.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fontTools import subset
from fontTools.ttLib import TTFont

from .assets import static_dir

ARABIC_RANGES = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
FEATURES = (*subset.Options().layout_features, "tnum")
NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 13, 14)  # names, version, copyright, licence and its URL


@dataclass(frozen=True)
class Face:
    """One packaged font as the page uses it: family, weight, file, and the characters it may draw."""

    family: str
    weight: int
    file: str  # under static/fonts/
    reference: str  # kept in every subset: the letters FreeType's auto-hinter measures the script's heights on
    ranges: tuple[tuple[int, int], ...] = ()  # empty: any character the font has

    def allows(self, codepoint: int) -> bool:
        return not self.ranges or any(low <= codepoint <= high for low, high in self.ranges)

    @property
    def unicode_range(self) -> str:
        return ", ".join(f"U+{low:04X}-{high:04X}" for low, high in self.ranges)


# FreeType's Latin blue zones and standard stem, and the ff fi fl ffi ffl ligatures' own code points: without them
# the auto-hinter takes those ligatures for glyphs of no script and draws them a shade differently.
LATIN_REFERENCE = "THEZOCQSLUfijkdbhxzroescupqgjy\ufb00\ufb01\ufb02\ufb03\ufb04"
ARABIC_REFERENCE = "\u0627\u0625\u0644\u0643\u0637\u0638\u062a\u062b\u0640"  # ا إ ل ك ط ظ ت ث and tatweel
FACES = (
    Face("Noto Sans", 400, "NotoSans-Regular.ttf", LATIN_REFERENCE),
    Face("Noto Sans", 700, "NotoSans-Bold.ttf", LATIN_REFERENCE),
    Face("Noto Sans Arabic", 400, "NotoSansArabic-Regular.ttf", ARABIC_REFERENCE, ARABIC_RANGES),
    Face("Noto Sans Arabic", 700, "NotoSansArabic-Bold.ttf", ARABIC_REFERENCE, ARABIC_RANGES),
)


@dataclass(frozen=True)
class WebFont:
    """A subset of one face: ``name`` is ``<font>-<16 hex of its bytes' SHA-256>.woff2``."""

    face: Face
    name: str
    data: bytes


def web_fonts(characters: Iterable[str]) -> tuple[WebFont, ...]:
    """The WOFF2 subsets that draw ``characters``, one per face that has any of them, in ``FACES`` order."""
    wanted = {ord(char) for char in characters}
    out = []
    for face in FACES:
        codepoints = _drawn(face) & wanted
        if codepoints:
            name, data = _subset(face.file, codepoints | _drawn(face).intersection(map(ord, face.reference)))
            out.append(WebFont(face, name, data))
    return tuple(out)


def font_faces(fonts: Iterable[WebFont], folder: str) -> str:
    """The ``@font-face`` rules for ``fonts`` published under ``folder`` (relative to the page)."""
    rules = []
    for font in fonts:
        face = font.face
        extra = f";unicode-range:{face.unicode_range}" if face.ranges else ""
        rules.append(f'@font-face{{font-family:"{face.family}";src:url("{folder}{font.name}") format("woff2");'
                     f"font-weight:{face.weight};font-display:swap{extra}}}")
    return "".join(rules)


@lru_cache(maxsize=len(FACES))
def _source(file: str) -> bytes:
    return (static_dir() / "fonts" / file).read_bytes()


@lru_cache(maxsize=len(FACES))
def _drawn(face: Face) -> frozenset[int]:
    """The code points ``face`` draws on a page: those its font maps, within its ``unicode-range``."""
    cmap = TTFont(io.BytesIO(_source(face.file)), lazy=True).getBestCmap()
    return frozenset(cp for cp in cmap if face.allows(cp))


def _options() -> subset.Options:
    options = subset.Options()
    options.layout_features = list(FEATURES)
    options.hinting = False
    options.name_IDs = list(NAME_IDS)
    options.notdef_outline = True
    options.flavor = "woff2"
    return options


@lru_cache(maxsize=128)
def _subset(file: str, codepoints: frozenset[int]) -> tuple[str, bytes]:
    """One face cut to ``codepoints`` (and what shaping them needs), as WOFF2; cached by the set."""
    font = TTFont(io.BytesIO(_source(file)), lazy=True, recalcTimestamp=False)
    subsetter = subset.Subsetter(_options())
    subsetter.populate(unicodes=sorted(codepoints))
    subsetter.subset(font)
    out = io.BytesIO()
    font.flavor = "woff2"
    font.save(out)
    data = out.getvalue()
    stem = file.rsplit(".", 1)[0]
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}.woff2", data
