"""A render's outputs as the page needs them: which files to copy, and the calls to action.

``read_video`` is the one place the builder reads a render folder. It checks
every file the page uses is there and that ``cta.json`` is what
``renderer.cta_document`` writes, and names the file and field when not.
``parse_cta`` does the checking on an already-parsed document, without I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SiteError

COPIED = ("video.mp4", "poster.jpg", "captions.vtt")  # render outputs the page serves itself
CTA_FILE = "cta.json"
ACTIONS = ("pay", "plan", "link")


@dataclass(frozen=True)
class Cta:
    """A call to action over the video, from ``start`` to ``end`` seconds."""

    start: float
    end: float
    label: str
    action: str  # pay | plan | link
    link: str | None  # for action "link": the name of a link (page, pay, plan, contact, optout)
    box: tuple[float, float, float, float] | None  # x, y, w, h as fractions of the frame


@dataclass(frozen=True)
class Video:
    """One recipient's rendered video: where its files are, its frame size, length and CTAs."""

    directory: Path
    width: int
    height: int
    duration: float
    direction: str
    ctas: tuple[Cta, ...]


def read_video(directory: str | Path) -> Video:
    """The render outputs in ``directory``, checked. Raises ``SiteError`` naming the missing or bad file."""
    folder = Path(directory)
    if not folder.is_dir():
        raise SiteError("is not a folder of render outputs (run `billcast render` first)", path=str(folder))
    for name in (*COPIED, CTA_FILE):
        path = folder / name
        if not path.is_file():
            raise SiteError("is missing: the page needs every render output (render again)", path=str(path))
        if path.stat().st_size == 0:
            raise SiteError("is empty: the render did not finish (render again)", path=str(path))
    source = str(folder / CTA_FILE)
    try:
        doc = json.loads((folder / CTA_FILE).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SiteError("is not UTF-8 text", path=source) from None
    except json.JSONDecodeError as exc:
        raise SiteError(f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                        path=source) from None
    return parse_cta(doc, folder, source=source)


def _number(value: Any, field: str, source: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SiteError(f"must be a number, got {json.dumps(value)}", path=source, field=field)
    if not low <= value <= high:
        raise SiteError(f"must be between {low:g} and {high:g}, got {value:g}", path=source, field=field)
    return float(value)


def _field(doc: Mapping[str, Any], key: str, source: str, where: str = "") -> Any:
    if key not in doc:
        raise SiteError("is missing", path=source, field=f"{where}{key}")
    return doc[key]


def _cta(item: Any, index: int, duration: float, source: str) -> Cta:
    where = f"ctas[{index}]."
    if not isinstance(item, Mapping):
        raise SiteError("must be an object", path=source, field=f"ctas[{index}]")
    start = _number(_field(item, "start", source, where), where + "start", source, high=duration)
    end = _number(_field(item, "end", source, where), where + "end", source, low=start, high=duration + 0.5)
    if end <= start:
        raise SiteError(f"must be after start ({start:g}), got {end:g}", path=source, field=where + "end")
    label, action, link = item.get("label"), item.get("action"), item.get("link")
    if not isinstance(label, str) or not label.strip():
        raise SiteError("must be a non-empty text", path=source, field=where + "label")
    if action not in ACTIONS:
        raise SiteError(f"must be one of {', '.join(ACTIONS)}, got {json.dumps(action)}", path=source,
                        field=where + "action")
    if link is not None and not isinstance(link, str):
        raise SiteError("must be a link name or null", path=source, field=where + "link")
    box = item.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise SiteError("must be [x, y, width, height] as fractions of the frame, or null", path=source,
                            field=where + "box")
        box = tuple(_number(v, f"{where}box[{i}]", source, high=1.0001) for i, v in enumerate(box))
    return Cta(start=start, end=min(end, duration), label=label.strip(), action=action, link=link, box=box)


def parse_cta(doc: Any, directory: str | Path, *, source: str = CTA_FILE) -> Video:
    """A ``cta.json`` document (as ``renderer.cta_document`` makes it) checked into a :class:`Video`."""
    if not isinstance(doc, Mapping):
        raise SiteError("must be a JSON object", path=source)
    if _field(doc, "version", source) != 1:
        raise SiteError(f"version {json.dumps(doc['version'])} is not supported (expected 1)", path=source,
                        field="version")
    duration = _number(_field(doc, "duration", source), "duration", source, low=0.001)
    size = _field(doc, "size", source)
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise SiteError(f"must be [width, height] in pixels, got {json.dumps(size)}", path=source, field="size")
    direction = doc.get("direction", "ltr")
    if direction not in ("ltr", "rtl"):
        raise SiteError(f'must be "ltr" or "rtl", got {json.dumps(direction)}', path=source, field="direction")
    ctas = _field(doc, "ctas", source)
    if not isinstance(ctas, list):
        raise SiteError("must be a list", path=source, field="ctas")
    return Video(directory=Path(directory), width=size[0], height=size[1], duration=duration, direction=direction,
                 ctas=tuple(_cta(item, i, duration, source) for i, item in enumerate(ctas)))
