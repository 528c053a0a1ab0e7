"""The files every page shares (script, logo, icon, the fonts' licence) and its stylesheet, read from the package once.

The stylesheet is not a shared file: each page carries it inline (minified), so
nothing blocks its first paint, with the ``@font-face`` rules of its own font
subsets (``fonts.py``) in front.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

COMMON = ("site.js", "logo.png", "icon.png", "fonts/OFL.txt")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SPACE = re.compile(r"\s+")
_AROUND = re.compile(r"\s*([{};,>])\s*")


def static_dir() -> Path:
    """The folder of the page's shared static files, as packaged."""
    return Path(str(resources.files(__package__) / "static"))


@lru_cache(maxsize=1)
def static_files() -> Mapping[str, bytes]:
    """``static/...`` names to bytes, as the page links them."""
    root = static_dir()
    return MappingProxyType({f"static/{name}": (root / name).read_bytes() for name in COMMON})


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """``site.css`` without comments and needless white space, for the page's ``<style>``."""
    return minify_css((static_dir() / "site.css").read_text(encoding="utf-8"))


def minify_css(text: str) -> str:
    """Comments and the white space around ``{ } ; , >`` dropped, other runs of white space made one space."""
    text = _SPACE.sub(" ", _COMMENT.sub("", text))
    return _AROUND.sub(r"\1", text).replace(";}", "}").strip()
