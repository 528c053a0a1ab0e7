"""Checks a storyboard needs beyond its shape: times, colours, templates, assets.

All of them run when a storyboard is loaded (``parse_storyboard``), so
``billcast check``, ``billcast run`` and the studio find the same problems, all
at once, each with its line. Templates are refused here for anything the
sandbox would stop (Python internals, ``self``, ``attr``, includes) wherever it
is written, also in a branch no customer's values ever take.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError

from .errors import StoryboardError
from .storyboard import (COLOR_RE, MAX_DURATION, MAX_PIXELS, MAX_TEMPLATE, NAME_RE, ChartLayer, ImageLayer, QRLayer, Storyboard, TableLayer, TextLayer,
                         dotted, resolve_asset)
from .templating import environment, sandbox_refusals, translation_keys

_RESERVED_KEYS = {"get", "keys", "items", "values"}


def template_fields(board: Storyboard) -> Iterator[tuple[tuple, str, str]]:
    """Every template in the storyboard: (location, source, 'template' | 'expression')."""
    for lang, texts in board.model.translations.items():
        for key, text in texts.items():
            yield ("translations", lang, key), text, "template"
    for si, scene in enumerate(board.model.scenes):
        base = ("scenes", si)
        if scene.narration is not None:
            yield base + ("narration",), scene.narration, "template"
        if scene.cta is not None:
            yield base + ("cta", "label"), scene.cta.label, "template"
            if scene.cta.when:
                yield base + ("cta", "when"), scene.cta.when, "expression"
        for li, layer in enumerate(scene.layers):
            loc = base + ("layers", li)
            if layer.when:
                yield loc + ("when",), layer.when, "expression"
            if isinstance(layer, TextLayer):
                yield loc + ("text",), layer.text, "template"
            elif isinstance(layer, ChartLayer):
                yield loc + ("values",), layer.values, "expression"
                for name in ("unit", "legend_current", "legend_last_year"):
                    yield loc + (name,), getattr(layer, name), "template"
            elif isinstance(layer, TableLayer):
                yield loc + ("rows",), layer.rows, "expression"
                yield loc + ("label",), layer.label, "template"
                yield loc + ("value",), layer.value, "template"


def _colors(board: Storyboard) -> Iterator[tuple[tuple, str]]:
    for name, value in board.model.colors.items():
        yield ("colors", name), value
    for si, scene in enumerate(board.model.scenes):
        bg = scene.background
        if bg.color:
            yield ("scenes", si, "background", "color"), bg.color
        for i, value in enumerate(bg.gradient or ()):
            yield ("scenes", si, "background", "gradient", i), value
        for li, layer in enumerate(scene.layers):
            loc = ("scenes", si, "layers", li)
            for field in ("color", "fill", "stroke", "background", "bar_color", "current_color",
                          "last_year_color", "text_color", "value_color", "rule_color"):
                value = getattr(layer, field, None)
                if isinstance(value, str):
                    yield loc + (field,), value


def semantic_errors(board: Storyboard) -> list[StoryboardError]:
    """Every problem the model's own validation cannot see."""
    errors: list[StoryboardError] = []
    errors += _time_errors(board)
    errors += _color_errors(board)
    errors += _template_errors(board)
    errors += _asset_errors(board)
    return errors


def _time_errors(board: Storyboard) -> list[StoryboardError]:
    m = board.model
    errors = []
    if m.duration > MAX_DURATION:
        errors.append(board.error(("scenes",), f"the scenes add up to {m.duration:g} s; a video lasts at most "
                                               f"{MAX_DURATION} s"))
    elif m.size[0] * m.size[1] * m.fps * m.duration > MAX_PIXELS:
        errors.append(board.error(("size",), f"{m.size[0]}x{m.size[1]} at {m.fps} fps for {m.duration:g} s is "
                                             f"too many pixels to render: at most 1920x1080 at 60 fps for "
                                             f"{MAX_DURATION} s, or as many pixels (4K at 30 fps for 90 s)"))
    if m.poster_time >= m.duration:
        errors.append(board.error(("poster_time",),
                                  f"must be before the end of the video ({m.duration:g} s), got {m.poster_time:g}"))
    if m.thumbnail.start is not None and m.thumbnail.start >= m.duration:
        errors.append(board.error(("thumbnail", "start"), f"must be before {m.duration:g} s"))
    seen: set[str] = set()
    for si, scene in enumerate(m.scenes):
        if scene.id in seen:
            errors.append(board.error(("scenes", si, "id"), f"scene id {scene.id!r} is used twice"))
        seen.add(scene.id)
        if scene.cta is not None and scene.cta.end > scene.duration + 1e-9:
            errors.append(board.error(("scenes", si, "cta", "end"),
                                      f"must be within the scene ({scene.duration:g} s), got {scene.cta.end:g}"))
        for li, layer in enumerate(scene.layers):
            for ai, anim in enumerate(layer.animate):
                start = anim.delay or 0
                if start >= scene.duration:
                    errors.append(board.error(("scenes", si, "layers", li, "animate", ai, "delay"),
                                              f"starts after the scene ends ({scene.duration:g} s)"))
    return errors


def _color_errors(board: Storyboard) -> list[StoryboardError]:
    errors = []
    for loc, value in _colors(board):
        named = loc[0] != "colors" and value in board.model.colors
        if not named and not COLOR_RE.match(value):
            errors.append(board.error(loc, f"not a colour: {value!r} (use #RGB, #RRGGBB, #RRGGBBAA "
                                           f"or a name from colors)"))
    return errors


def _template_errors(board: Storyboard) -> list[StoryboardError]:
    m = board.model
    default = m.translations.get(m.default_language)
    errors = _translation_errors(board, default)
    known = set(default or ())
    for loc, source, kind in template_fields(board):
        if len(source) > MAX_TEMPLATE:
            errors.append(board.error(loc, f"a text of {len(source):,} characters; at most {MAX_TEMPLATE:,}"))
            continue
        if kind == "template" and "{" not in source:
            continue  # plain text: nothing to parse, no keys read
        try:
            ast = environment().parse("{{ " + source + " }}" if kind == "expression" else source)
        except TemplateSyntaxError as exc:
            errors.append(_template_error(board, loc, exc.lineno, f"template error: {exc.message}"))
            continue
        except RecursionError:
            errors.append(board.error(loc, "template error: nested too deeply"))
            continue
        errors += [_template_error(board, loc, lineno, message) for lineno, message in sandbox_refusals(ast)]
        if m.translations and default is None:
            continue  # reported once by _translation_errors; key checks need a default language
        for key in sorted(translation_keys(ast) - known):
            errors.append(board.error(loc, f"t.{key} is not a translation key of {m.default_language!r}"))
    for si, scene in enumerate(m.scenes):
        for li, layer in enumerate(scene.layers):
            if isinstance(layer, QRLayer) and not NAME_RE.match(layer.link):
                errors.append(board.error(("scenes", si, "layers", li, "link"), "a link name, like page or pay"))
    return errors


def _translation_errors(board: Storyboard, default: dict[str, str] | None) -> list[StoryboardError]:
    m = board.model
    errors = []
    if m.translations and default is None:
        errors.append(board.error(("default_language",),
                                  f"{m.default_language!r} has no translations; languages given: "
                                  f"{', '.join(sorted(m.translations))}"))
    known = set(default or ())
    for lang, texts in m.translations.items():
        for key in texts:
            if not NAME_RE.match(key) or key in _RESERVED_KEYS:
                errors.append(board.error(("translations", lang, key), "keys are names of letters, digits "
                                                                       "and _ (and not get/keys/items/values)"))
            elif default is not None and lang != m.default_language and key not in known:
                errors.append(board.error(("translations", lang, key),
                                          f"not in the default language ({m.default_language})"))
    return errors


def _template_error(board: Storyboard, loc: tuple, lineno: int | None, message: str) -> StoryboardError:
    """A problem on line ``lineno`` of the template at ``loc``; a block text's lines follow its key's."""
    line = board.line_of(loc)
    if line is not None and lineno and lineno > 1:
        line += lineno
    return StoryboardError(message, path=board.path, line=line, field=dotted(loc))


def _asset_errors(board: Storyboard) -> list[StoryboardError]:
    wanted: list[tuple[tuple, str]] = []
    if board.model.audio is not None:
        wanted.append((("audio", "bed"), board.model.audio.bed))
    for si, scene in enumerate(board.model.scenes):
        if scene.background.image:
            wanted.append((("scenes", si, "background", "image"), scene.background.image))
        for li, layer in enumerate(scene.layers):
            if isinstance(layer, ImageLayer):
                wanted.append((("scenes", si, "layers", li, "src"), layer.src))
    errors = []
    for loc, src in wanted:
        try:
            path = resolve_asset(board, src, loc)
        except StoryboardError as exc:
            errors.append(exc)
            continue
        if not path.is_file():
            errors.append(board.error(loc, f"asset not found: assets/{src}"))
        elif board.assets_dir.resolve() not in path.resolve().parents:
            errors.append(board.error(loc, f"asset links outside assets/: {src!r}"))
    return errors
