"""One recipient's outputs from a planned timeline, written all at once or not at all.

``render`` writes video.mp4, poster.jpg, captions.vtt, thumb.gif and cta.json
into a temporary folder beside ``out`` and renames it into place only when
every file is complete, so a failure never leaves a half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .cache import SegmentCache
from .captions import webvtt
from .compose import Compositor
from .draw import Drawer
from .encoding import VideoSettings
from .errors import BillcastError, EncodeError
from .storyboard import default_assets_dir
from .timeline import Timeline

ENGINES = ("fast", "moviepy")
OUTPUTS = ("video.mp4", "poster.jpg", "captions.vtt", "thumb.gif", "cta.json")
# The poster is the first thing a page paints (and an email's image): progressive, chroma halved, quality 80.
# A 1280x720 poster comes to 34-50 KB, a fifth less than at 88, and looks the same (PSNR 37-40 dB; BENCHMARKS.md).
POSTER_JPEG = {"quality": 80, "subsampling": "4:2:0", "optimize": True, "progressive": True}


def default_fonts_dir() -> Path:
    return default_assets_dir() / "fonts"


@dataclass(frozen=True)
class RenderResult:
    out: Path
    files: tuple[str, ...]
    truncated: tuple[str, ...]  # layers whose text did not fit even at its minimum size


def cta_document(timeline: Timeline) -> dict:
    """What the microsite needs to put clickable calls to action over the video."""
    return {
        "version": 1,
        "duration": timeline.duration,
        "size": list(timeline.size),
        "direction": timeline.direction,
        "ctas": [{"start": c.start, "end": c.end, "label": c.label, "action": c.action, "link": c.link,
                  "box": list(c.box) if c.box else None, "scene": c.scene} for c in timeline.ctas],
    }


def write_poster(comp: Compositor, path: Path) -> None:
    comp.frame(comp.timeline.poster_time).save(path, "JPEG", **POSTER_JPEG)


def write_thumbnail(comp: Compositor, path: Path) -> None:
    """A short looping GIF for emails: at most 480 px wide, one shared palette."""
    spec = comp.timeline.thumbnail
    w, h = comp.timeline.size
    width = min(spec.width, w)
    height = max(round(h * width / w / 2) * 2, 2)
    count = max(round(spec.duration * spec.fps), 1)
    frames = [comp.small_frame(spec.start + i / spec.fps, (width, height)) for i in range(count)]
    strip = Image.new("RGB", (width, height * min(count, 4)))
    for i, frame in enumerate(frames[:: max(count // 4, 1)][:4]):
        strip.paste(frame, (0, i * height))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    gif = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    gif[0].save(path, "GIF", save_all=True, append_images=gif[1:], duration=round(1000 / spec.fps), loop=0,
                optimize=False, disposal=1)


def preview(timeline: Timeline, t: float, *, fonts_dir: Path | None = None) -> Image.Image:
    """The frame at ``t`` seconds, drawn without encoding anything."""
    return Compositor(timeline, Drawer(fonts_dir or default_fonts_dir())).frame(t)


def _encode(engine: str, comp: Compositor, out: Path, tmp: Path, settings: VideoSettings,
            cache: SegmentCache | None) -> None:
    if engine == "fast":
        from .engine_ffmpeg import encode_fast

        encode_fast(comp, out, tmp, settings, cache)
        return
    if engine == "moviepy":
        from .engine_moviepy import encode_moviepy

        encode_moviepy(comp, out, tmp, settings)
        return
    raise BillcastError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` in the place of ``out``, the old one removed only once it is out of the way."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render(timeline: Timeline, out: str | Path, *, engine: str = "fast", fonts_dir: Path | None = None,
           settings: VideoSettings | None = None, cache: SegmentCache | None = None) -> RenderResult:
    """Write all of one recipient's outputs into ``out`` (replacing it whole).

    ``engine`` is ``fast`` (ffmpeg composes; segments reused through ``cache`` when given)
    or ``moviepy`` (the reference, frame by frame).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    drawer = Drawer(fonts_dir or default_fonts_dir())
    comp = Compositor(timeline, drawer)
    try:
        _encode(engine, comp, tmp / "video.mp4", tmp, settings or VideoSettings(), cache)
        if not (tmp / "video.mp4").is_file() or (tmp / "video.mp4").stat().st_size == 0:
            raise EncodeError(f"the {engine} engine wrote no video")
        write_poster(comp, tmp / "poster.jpg")
        (tmp / "captions.vtt").write_text(webvtt(timeline), encoding="utf-8")
        write_thumbnail(comp, tmp / "thumb.gif")
        (tmp / "cta.json").write_text(json.dumps(cta_document(timeline), ensure_ascii=False, indent=2),
                                      encoding="utf-8")
        truncated = tuple(layer.name for scene in timeline.scenes for layer, sprite in comp.sprites(scene)
                          if sprite.truncated)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RenderResult(out=out, files=OUTPUTS, truncated=truncated)
