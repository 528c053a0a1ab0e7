"""The files every page shares: stylesheet, script, logo and fonts, read from the package once.

The fonts are the vendored, unmodified Noto fonts (``assets/fonts``) with their
licence; the Arabic pair goes only into pages that have Arabic text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

COMMON = ("site.css", "site.js", "logo.png", "icon.png", "fonts/NotoSans-Regular.ttf", "fonts/NotoSans-Bold.ttf",
          "fonts/OFL.txt")
ARABIC = ("fonts/NotoSansArabic-Regular.ttf", "fonts/NotoSansArabic-Bold.ttf")


def static_dir() -> Path:
    """The folder of the page's shared static files, as packaged."""
    return Path(str(resources.files(__package__) / "static"))


@lru_cache(maxsize=2)
def static_files(*, arabic: bool) -> Mapping[str, bytes]:
    """``static/...`` names to bytes, as the page links them."""
    root = static_dir()
    names = COMMON + (ARABIC if arabic else ())
    return MappingProxyType({f"static/{name}": (root / name).read_bytes() for name in names})
