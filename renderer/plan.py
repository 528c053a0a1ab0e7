"""Storyboard + values + links -> Timeline. Pure: no files, no processes, no clock.

Every template is resolved here, so a missing field fails before anything is
drawn or written, with the storyboard's file, line and field in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError

from .errors import StoryboardError
from .storyboard import (Animation, Background, ChartLayer, ImageLayer, QRLayer, RectLayer, Scene, Storyboard,
                         TableLayer, TextLayer, dotted, resolve_asset)
from .templating import (LazyTranslations, compiled_expression, compiled_template, format_with, is_rtl,
                         parse_locale)
from .timeline import (RGBA, Anim, AudioSpec, BackgroundSpec, Bar, CallToAction, ChartSpec, ImageSpec,
                       PlannedLayer, PlannedScene, QRSpec, RectSpec, TableSpec, TextSpec, ThumbnailSpec, Timeline)


def parse_color(value: str, named: Mapping[str, str] | None = None) -> RGBA:
    """``#RGB``, ``#RRGGBB``, ``#RRGGBBAA`` or a name from the storyboard's colours."""
    value = (named or {}).get(value, value)
    digits = value.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 6:
        digits += "ff"
    r, g, b, a = (int(digits[i:i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


def pick_language(board: Storyboard, locale: str) -> str:
    """The storyboard language for a locale: exact tag, then language, then the default."""
    texts = board.model.translations
    for candidate in (locale, locale.replace("_", "-"), parse_locale(locale).language):
        if candidate in texts:
            return candidate
    return board.model.default_language


class _Resolver:
    """Renders one storyboard's templates for one recipient, naming the place on failure."""

    def __init__(self, board: Storyboard, values: Mapping[str, Any], links: Mapping[str, str],
                 locale: str) -> None:
        self.board = board
        self.locale = locale
        self.language = pick_language(board, locale)
        texts = dict(board.model.translations.get(board.model.default_language, {}))
        texts.update(board.model.translations.get(self.language, {}))
        self.context: dict[str, Any] = dict(values)
        self.context.update(links=dict(links), locale=locale, language=self.language,
                            direction="rtl" if is_rtl(locale) else "ltr")
        self.context["t"] = LazyTranslations(texts, self._translation)

    def _translation(self, key: str, source: str) -> str:
        lang = self.language if key in self.board.model.translations.get(self.language, {}) \
            else self.board.model.default_language
        return self.text(("translations", lang, key), source)

    def _fail(self, loc: tuple, exc: Exception) -> StoryboardError:
        message = str(getattr(exc, "message", None) or exc)
        if type(exc).__name__ == "UndefinedError":
            message = f"the values have no such field: {message}"
        return StoryboardError(message, path=self.board.path, line=self.board.line_of(loc), field=dotted(loc))

    def text(self, loc: tuple, source: str) -> str:
        try:
            return compiled_template(source).render(self.context)
        except StoryboardError:
            raise
        except (TemplateError, ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as exc:
            raise self._fail(loc, exc) from None

    def value(self, loc: tuple, source: str) -> Any:
        try:
            return compiled_expression(source)(self.context)
        except StoryboardError:
            raise
        except (TemplateError, ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as exc:
            raise self._fail(loc, exc) from None

    def with_row(self, row: Any) -> "_Resolver":
        """The same resolver with ``row`` bound, for per-row templates of a table."""
        other = object.__new__(_Resolver)
        other.__dict__.update(self.__dict__)
        other.context = dict(self.context, row=row)
        return other

    def truthy(self, loc: tuple, source: str | None) -> bool:
        return True if source is None else bool(self.value(loc, source))


class _Geometry:
    """Storyboard pixels -> output pixels, mirrored for right-to-left layouts."""

    def __init__(self, board: Storyboard, size: tuple[int, int], rtl: bool) -> None:
        bw, bh = board.model.size
        self.sx, self.sy = size[0] / bw, size[1] / bh
        self.size = size
        self.mirror = rtl and board.model.mirror_rtl
        self.rtl = rtl

    def box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x, y, w, h = box
        x, y, w, h = x * self.sx, y * self.sy, w * self.sx, h * self.sy
        if self.mirror:
            x = self.size[0] - x - w
        return (x, y, w, h)

    def side(self, name: str) -> str:
        """start/end (and, in a mirrored layout, left/right) to the physical side."""
        flip = {"left": "right", "right": "left"}
        if name == "start":
            return "right" if self.rtl else "left"
        if name == "end":
            return "left" if self.rtl else "right"
        return flip.get(name, name) if self.mirror else name


def _anims(anims: list[Animation], box: tuple[float, float, float, float], scene: Scene,
           geo: _Geometry) -> tuple[Anim, ...]:
    out = []
    width, height = geo.size
    x, y, w, h = box
    for anim in anims:
        if anim.type == "fade_out":
            start = anim.delay if anim.delay is not None else max(scene.duration - anim.duration, 0)
            out.append(Anim("fade_out", start, anim.duration))
            continue
        start = anim.delay or 0.0
        if anim.type == "fade_in":
            out.append(Anim("fade_in", start, anim.duration))
            continue
        edge = geo.side(anim.edge)
        dist = None if anim.distance is None else anim.distance * (geo.sx if edge in ("left", "right") else geo.sy)
        offset = {
            "left": (-(dist if dist is not None else x + w), 0.0),
            "right": ((dist if dist is not None else width - x), 0.0),
            "top": (0.0, -(dist if dist is not None else y + h)),
            "bottom": (0.0, (dist if dist is not None else height - y)),
        }[edge]
        out.append(Anim("slide_in", start, anim.duration, offset))
    return tuple(out)


def _month_back(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _chart(layer: ChartLayer, loc: tuple, res: _Resolver, colors: Mapping[str, str],
           direction: str) -> ChartSpec:
    raw = res.value(loc + ("values",), layer.values) or []
    try:
        series = [(str(item["period"]), float(item["quantity"])) for item in raw]
    except (TypeError, KeyError, ValueError):
        raise res._fail(loc + ("values",), ValueError("must give a list of {period, quantity}")) from None
    shown = series[-layer.months:]
    current = shown[-1][0] if shown else None
    last_year = _month_back(current, 12) if current else None
    unit = res.text(loc + ("unit",), layer.unit)
    bars = []
    for period, quantity in shown:
        role = "current" if period == current else "last_year" if period == last_year else "other"
        caption = f"{format_with(res.locale, 'number', quantity, '#,##0')} {unit}".strip() if role != "other" else ""
        bars.append(Bar(label=format_with(res.locale, "month", period, "LLL"), value=quantity, role=role, caption=caption))
    return ChartSpec(bars=tuple(bars), unit=unit, bar_color=parse_color(layer.bar_color, colors),
                     current_color=parse_color(layer.current_color, colors),
                     last_year_color=parse_color(layer.last_year_color, colors),
                     text_color=parse_color(layer.text_color, colors),
                     legend_current=res.text(loc + ("legend_current",), layer.legend_current),
                     legend_last_year=res.text(loc + ("legend_last_year",), layer.legend_last_year)
                     if any(b.role == "last_year" for b in bars) else "",
                     direction=direction)


def _table(layer: TableLayer, loc: tuple, res: _Resolver, colors: Mapping[str, str], geo: _Geometry,
           direction: str) -> TableSpec:
    items = res.value(loc + ("rows",), layer.rows) or []
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):
        raise res._fail(loc + ("rows",), ValueError("must give a list"))
    rows = []
    for item in list(items)[: layer.max_rows]:
        row = res.with_row(item)
        rows.append((row.text(loc + ("label",), layer.label).strip(), row.text(loc + ("value",), layer.value).strip()))
    color = parse_color(layer.color, colors)
    return TableSpec(rows=tuple(rows), color=color,
                     value_color=parse_color(layer.value_color, colors) if layer.value_color else color,
                     rule_color=parse_color(layer.rule_color, colors) if layer.rule_color else None,
                     weight=layer.font.weight, size=layer.font.size * geo.sy,
                     min_size=(layer.font.min_size or layer.font.size * 0.6) * geo.sy, direction=direction)


def _spec(layer, loc: tuple, res: _Resolver, board: Storyboard, geo: _Geometry, links: Mapping[str, str]):
    colors = board.model.colors
    direction = "rtl" if geo.rtl else "ltr"
    if isinstance(layer, TextLayer):
        align = "center" if layer.align == "center" else geo.side(layer.align)
        return TextSpec(text=res.text(loc + ("text",), layer.text), color=parse_color(layer.color, colors),
                        weight=layer.font.weight, size=layer.font.size * geo.sy,
                        min_size=(layer.font.min_size or layer.font.size) * geo.sy, align=align,
                        valign=layer.valign, max_lines=layer.max_lines, line_height=layer.line_height,
                        direction=direction)
    if isinstance(layer, ImageLayer):
        align = "center" if layer.align == "center" else geo.side(layer.align)
        return ImageSpec(path=str(resolve_asset(board, layer.src, loc + ("src",))), fit=layer.fit, align=align)
    if isinstance(layer, RectLayer):
        return RectSpec(fill=parse_color(layer.fill, colors), radius=layer.radius * geo.sy,
                        stroke=parse_color(layer.stroke, colors) if layer.stroke else None,
                        stroke_width=layer.stroke_width * geo.sy)
    if isinstance(layer, ChartLayer):
        return _chart(layer, loc, res, colors, direction)
    if isinstance(layer, TableLayer):
        return _table(layer, loc, res, colors, geo, direction)
    if isinstance(layer, QRLayer):
        if layer.link not in links:
            given = ", ".join(sorted(links)) or "none"
            raise board.error(loc + ("link",), f"no link named {layer.link!r} was given (links given: {given})")
        return QRSpec(data=links[layer.link], color=parse_color(layer.color, colors),
                      background=parse_color(layer.background, colors))
    raise TypeError(f"unknown layer {layer!r}")


def _background(bg: Background, board: Storyboard, loc: tuple) -> BackgroundSpec:
    colors = board.model.colors
    if bg.color:
        return BackgroundSpec(color=parse_color(bg.color, colors))
    if bg.gradient:
        return BackgroundSpec(gradient=(parse_color(bg.gradient[0], colors), parse_color(bg.gradient[1], colors)),
                              angle=bg.angle)
    return BackgroundSpec(image=str(resolve_asset(board, bg.image or "", loc + ("image",))))


def _scene(scene: Scene, si: int, start_frame: int, frames: int, fps: int, res: _Resolver, board: Storyboard,
           geo: _Geometry, links: Mapping[str, str]) -> PlannedScene:
    base = ("scenes", si)
    layers = []
    for li, layer in enumerate(scene.layers):
        loc = base + ("layers", li)
        if not res.truthy(loc + ("when",), layer.when):
            continue
        box = geo.box(layer.box)
        layers.append(PlannedLayer(spec=_spec(layer, loc, res, board, geo, links), box=box, opacity=layer.opacity,
                                   anims=_anims(layer.animate, box, scene, geo), name=layer.id or f"layer{li}",
                                   index=li))
    narration = res.text(base + ("narration",), scene.narration).strip() if scene.narration else None
    cta = None
    if scene.cta is not None and res.truthy(base + ("cta", "when"), scene.cta.when):
        c = scene.cta
        box = None
        if c.box is not None:
            x, y, w, h = geo.box(c.box)
            box = (x / geo.size[0], y / geo.size[1], w / geo.size[0], h / geo.size[1])
        start = start_frame / fps
        cta = CallToAction(label=res.text(base + ("cta", "label"), c.label).strip(), action=c.action,
                           start=round(start + c.start, 3), end=round(min(start + c.end, (start_frame + frames) / fps), 3),
                           link=c.link, box=box, scene=scene.id)
    return PlannedScene(id=scene.id, index=si, start_frame=start_frame, frames=frames, fps=fps, size=geo.size,
                        background=_background(scene.background, board, base + ("background",)),
                        layers=tuple(layers), narration=narration or None, cta=cta)


def plan(board: Storyboard, values: Mapping[str, Any], links: Mapping[str, str], *,
         size: tuple[int, int] | None = None, fps: int | None = None, locale: str | None = None) -> Timeline:
    """Resolve a storyboard for one recipient into a timeline. Raises ``StoryboardError``."""
    m = board.model
    locale = locale or values.get("locale") or _default_locale(m.default_language)
    size = size or m.size
    fps = fps or m.fps
    if size[0] % 2 or size[1] % 2:
        raise StoryboardError(f"output size must be even, got {size[0]}x{size[1]}", path=board.path)
    rtl = is_rtl(locale)
    res = _Resolver(board, values, links, locale)
    geo = _Geometry(board, size, rtl)
    scenes = []
    elapsed = 0.0
    for si, scene in enumerate(m.scenes):
        start_frame = round(elapsed * fps)
        elapsed += scene.duration
        frames = max(round(elapsed * fps) - start_frame, 1)
        scenes.append(_scene(scene, si, start_frame, frames, fps, res, board, geo, links))
    total = scenes[-1].start_frame + scenes[-1].frames
    audio = None
    if m.audio is not None:
        audio = AudioSpec(path=str(resolve_asset(board, m.audio.bed, ("audio", "bed"))), volume=m.audio.volume,
                          fade_out=m.audio.fade_out)
    thumb = m.thumbnail
    duration = total / fps
    t_start = thumb.start if thumb.start is not None else max(m.poster_time - thumb.duration / 2, 0.0)
    t_start = max(min(t_start, duration - thumb.duration), 0.0)
    return Timeline(storyboard=m.name, size=size, fps=fps, frames=total, scenes=tuple(scenes), audio=audio,
                    poster_time=min(m.poster_time, duration - 1 / fps),
                    thumbnail=ThumbnailSpec(start=t_start, duration=min(thumb.duration, duration), fps=thumb.fps,
                                            width=min(thumb.width, size[0])),
                    locale=locale, language=res.language, direction="rtl" if rtl else "ltr",
                    ctas=tuple(s.cta for s in scenes if s.cta is not None))


def _default_locale(language: str) -> str:
    return str(parse_locale(language)).replace("_", "-")

