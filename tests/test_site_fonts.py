"""A page's fonts: cut to its text, covering every character of it, shaping Arabic as the whole fonts do, shared.

Every sample page (and its paid twin) is checked against the cmaps of the
subsets it ships; the Arabic subsets are checked form by form against the
whole fonts (each letter's isolated, initial, medial and final glyph and the
lam-alef ligatures, compared by outline, and the mark positioning kept).
"""

from __future__ import annotations

import io
import re
from functools import lru_cache

import pytest
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont

from billcast.microsite import static_dir
from billcast.microsite.charset import page_characters
from billcast.microsite.fonts import FACES, web_fonts

from test_site import ALL_SAMPLES, Page, build_for

SHAPING = ("isol", "init", "medi", "fina", "rlig")
FACE_RULE = re.compile(r'@font-face\{font-family:"([^"]+)";src:url\("([^"]+)"\) format\("woff2"\);'
                       r"font-weight:(\d+);font-display:swap(?:;unicode-range:([^}]+))?\}")


def fonts_of(site) -> dict[str, TTFont]:
    return {name: TTFont(io.BytesIO(data)) for name, data in site.files.items() if name.endswith(".woff2")}


@lru_cache(maxsize=None)
def whole(file: str) -> TTFont:
    return TTFont(static_dir() / "fonts" / file)


def drawable(char: str) -> bool:
    """Whether a packaged face draws ``char`` on a page (the rest falls back to the system's fonts)."""
    return any(face.allows(ord(char)) and ord(char) in whole(face.file).getBestCmap() for face in FACES)


@pytest.fixture(scope="module")
def sites():
    return {(cid, paid): build_for(cid, name, paid=paid) for name, cid in ALL_SAMPLES for paid in (False, True)}


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
@pytest.mark.parametrize("paid", [False, True], ids=["open", "paid"])
def test_the_fonts_cover_every_character_of_the_page(sites, customer_id, paid) -> None:
    site = sites[customer_id, paid]
    page = Page(site.html)
    mapped = set().union(*(font.getBestCmap() for font in fonts_of(site).values()))
    text = set("".join(page.chunks) + "".join(attrs.get("alt") or "" for attrs in page.all("img"))) - set("\n\t")
    missing = sorted(char for char in text if drawable(char) and ord(char) not in mapped)
    assert missing == [], f"characters of the page its fonts lack: {missing}"
    assert "\u00a0" not in text or 0xA0 in mapped  # Babel's no-break space between amount and currency


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_the_page_names_exactly_its_fonts_with_their_faces(sites, customer_id) -> None:
    site = sites[customer_id, False]
    page = Page(site.html)
    rules = FACE_RULE.findall(page.styles[0])
    assert sorted(url for _, url, _, _ in rules) == sorted(name for name in site.files if name.endswith(".woff2"))
    preloads = [attrs["href"] for attrs in page.all("link") if attrs.get("as") == "font"]
    assert sorted(preloads) == sorted(url for _, url, _, _ in rules)
    for family, url, weight, ranges in rules:
        face = next(face for face in FACES if face.file.removesuffix(".ttf") == url.split("/")[-1].rsplit("-", 1)[0])
        assert (family, int(weight), bool(ranges)) == (face.family, face.weight, bool(face.ranges))
        font = fonts_of(site)[url]
        assert font.flavor == "woff2" and "fpgm" not in font  # WOFF2, hinting dropped
        assert font["name"].getDebugName(13), "the OFL notice stays in the file"


def test_a_font_file_is_named_by_its_bytes_and_identical_subsets_are_shared(sites) -> None:
    import hashlib

    for site in sites.values():
        for name, data in site.files.items():
            if name.endswith(".woff2"):
                assert name.rsplit("-", 1)[1] == hashlib.sha256(data).hexdigest()[:16] + ".woff2"
    italian = [cid for _, cid in ALL_SAMPLES if cid.startswith("IT-")]
    names = {cid: frozenset(n for n in sites[cid, False].files if n.endswith(".woff2")) for cid in italian}
    assert len(set(names.values())) < len(italian)  # pages whose text needs nothing more share their fonts
    rebuilt = build_for("IT-000124")
    assert {n: d for n, d in rebuilt.files.items() if n.endswith(".woff2")} == \
        {n: d for n, d in sites["IT-000124", False].files.items() if n.endswith(".woff2")}


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_the_paid_page_uses_the_fonts_of_the_open_page(sites, customer_id) -> None:
    fonts = [{n for n in sites[customer_id, paid].files if n.endswith(".woff2")} for paid in (False, True)]
    assert fonts[0] == fonts[1]


def outline(font: TTFont, glyph: str | None) -> tuple | None:
    if glyph is None:
        return None
    pen = DecomposingRecordingPen(font.getGlyphSet())
    font.getGlyphSet()[glyph].draw(pen)
    return tuple((op, tuple(args)) for op, args in pen.value)


def lookups(font: TTFont, tag: str):
    gsub = font["GSUB"].table
    for record in gsub.FeatureList.FeatureRecord:
        if record.FeatureTag == tag:
            for index in record.Feature.LookupListIndex:
                for table in gsub.LookupList.Lookup[index].SubTable:
                    yield getattr(table, "ExtSubTable", table)


def shaping(font: TTFont, chars: set[int]) -> tuple[dict, dict]:
    """Each character's glyph in every contextual form (by outline), and the rlig ligatures of those forms."""
    cmap = font.getBestCmap()
    forms = {(cp, "base"): cmap[cp] for cp in chars}
    for tag in SHAPING[:4]:
        mapping = {k: v for table in lookups(font, tag) for k, v in getattr(table, "mapping", {}).items()}
        forms.update({(cp, tag): mapping.get(cmap[cp]) for cp in chars})
    named = {}  # a glyph, by the first (character, form) that gives it
    for key, glyph in sorted(forms.items()):
        named.setdefault(glyph, key)
    ligatures = {}
    for table in lookups(font, "rlig"):
        for first, entries in getattr(table, "ligatures", {}).items():
            for entry in entries:
                glyphs = (first, *entry.Component)
                if all(g in named for g in glyphs):
                    ligatures[tuple(named[g] for g in glyphs)] = outline(font, entry.LigGlyph)
    return {key: outline(font, glyph) for key, glyph in forms.items()}, ligatures


@pytest.mark.parametrize("customer_id", ["EG-000789", "EG-000790", "EG-000801"])
def test_arabic_subsets_keep_every_form_and_ligature_the_whole_font_gives_their_letters(sites, customer_id) -> None:
    site = sites[customer_id, False]
    arabic = {name: font for name, font in fonts_of(site).items() if "Arabic" in name}
    assert len(arabic) == 2
    for name, font in arabic.items():
        full = whole(name.split("/")[-1].rsplit("-", 1)[0] + ".ttf")
        chars = set(font.getBestCmap())
        kept_forms, kept_ligatures = shaping(font, chars)
        full_forms, full_ligatures = shaping(full, chars)
        assert kept_forms == full_forms
        assert kept_ligatures == full_ligatures and full_ligatures  # lam-alef and its kin
        assert sum(value is not None for (_, tag), value in full_forms.items() if tag != "base") > len(chars)
        features = {record.FeatureTag for record in font["GPOS"].table.FeatureList.FeatureRecord}
        assert {"mark", "mkmk"} <= features


def test_page_characters_are_the_text_a_reader_sees() -> None:
    markup = ('<title>Tab</title><style>p{color:red}</style><script>let z = 1</script>'
              '<p class="q">A &amp; B</p><img alt="Logo" src="x"><svg><text>7</text></svg>')
    assert page_characters(markup) == frozenset("A&B Logo7")


def test_web_fonts_skip_faces_with_nothing_to_draw_and_keep_the_hinters_letters() -> None:
    latin = web_fonts("Hello")
    assert [font.face.file for font in latin] == ["NotoSans-Regular.ttf", "NotoSans-Bold.ttf"]
    cmap = TTFont(io.BytesIO(latin[0].data)).getBestCmap()
    assert set(map(ord, "Helo")) <= set(cmap) and ord("Z") in cmap  # Z: one of FreeType's reference letters
    arabic = web_fonts("مرحبا")
    assert [font.face.family for font in arabic] == ["Noto Sans Arabic", "Noto Sans Arabic"]
    assert web_fonts("\u4e2d") == ()  # no packaged face draws it: the system's fonts will
