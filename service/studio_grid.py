"""What the studio's panels list about a storyboard and a customer: the merge fields and filters a text
can use, each planned layer with its box, and every translation in every language with the ones that
are missing or that do not fit their box once drawn.

Flask-free: the routes in ``studio_preview`` turn these into responses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from billcast.jobs.storyboard_check import fit
from billcast.renderer import BillcastError, Drawer, Storyboard, Timeline, layer_keys, overflowing, plan
from billcast.renderer.timeline import PlannedLayer, PlannedScene

GRID_BOX = (1280, 1280)  # overflow is measured at the preview's size
MAX_FIELDS = 300

FILTERS = (  # what a text can format values with (docs/STORYBOARDS.md), each with how to write it
    {"name": "money", "use": "money(currency)", "for": "number", "about": "an amount in the customer's currency"},
    {"name": "date", "use": "date('long')", "for": "date", "about": "a date: long, medium, short or a pattern"},
    {"name": "month", "use": "month", "for": "date", "about": "a month and year, e.g. November 2026"},
    {"name": "number", "use": "number", "for": "number", "about": "a number with the locale's separators"},
    {"name": "percent", "use": "percent", "for": "number", "about": "0.25 as 25 %"},
    {"name": "abs", "use": "abs", "for": "number", "about": "without its sign"},
    {"name": "round", "use": "round(1)", "for": "number", "about": "rounded to a number of decimals"},
    {"name": "upper", "use": "upper", "for": "text", "about": "IN CAPITALS"},
    {"name": "title", "use": "title", "for": "text", "about": "Each Word Capitalised"},
    {"name": "default", "use": "default('')", "for": "any", "about": "a fallback when the value is empty"},
    {"name": "length", "use": "length", "for": "list", "about": "how many items a list has"},
)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, (dt.date, dt.datetime)):
        return "date"
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value if len(value) != 7 else value + "-01")
            return "date"
        except ValueError:
            return "text"
    if isinstance(value, (list, tuple)):
        return "list"
    return "mapping" if isinstance(value, Mapping) else "text"


def merge_fields(values: Mapping[str, Any], translations: Mapping[str, str]) -> list[dict[str, str]]:
    """Every value a text can show, by the name to write in ``{{ }}``: the record's fields (nested ones
    dotted), then the storyboard's translations as ``t.<key>``; each with its value for this customer."""
    found: list[dict[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if len(found) >= MAX_FIELDS:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and key.isidentifier() and not key.startswith("_"):
                    walk(f"{prefix}.{key}" if prefix else key, item)
            return
        kind = _kind(value)
        shown = f"{len(value)} item{'s' if len(value) != 1 else ''}" if kind == "list" else \
            "" if value is None else str(value)
        found.append({"path": prefix, "value": shown[:80], "kind": kind})

    walk("", values)
    for key, text in translations.items():
        if len(found) < MAX_FIELDS:
            found.append({"path": f"t.{key}", "value": text[:80], "kind": "translation"})
    return found


def _shown_at(layer: PlannedLayer, scene: PlannedScene) -> float:
    """Seconds into the scene when the layer has fully come in (its enter animations done)."""
    entered = max((a.start + a.duration for a in layer.anims if a.type != "fade_out"), default=0.0)
    return min(entered, max(scene.duration - 1 / scene.fps, 0.0))


def layer_json(timeline: Timeline, board: Storyboard) -> dict[str, Any]:
    """Every scene's planned layers, topmost first: where each is in the frame (at rest, in the plan's
    pixels), how it comes in and goes, and which layer of the storyboard it is."""
    mirrored = timeline.direction == "rtl" and board.model.mirror_rtl
    scenes = []
    for scene in timeline.scenes:
        written = board.model.scenes[scene.index].layers
        layers = [{"index": layer.index, "name": layer.name, "kind": written[layer.index].kind,
                   "box": [round(v, 2) for v in layer.box], "opacity": layer.opacity,
                   "anims": [{"type": a.type, "start": a.start, "duration": a.duration, "offset": list(a.offset)}
                             for a in layer.anims],
                   "line": board.line_of(("scenes", scene.index, "layers", layer.index))}
                  for layer in reversed(scene.layers)]
        scenes.append({"index": scene.index, "id": scene.id, "start": scene.start, "end": scene.end,
                       "line": board.line_of(("scenes", scene.index)), "layers": layers})
    return {"size": list(timeline.size), "board": list(board.model.size), "mirrored": mirrored,
            "direction": timeline.direction, "language": timeline.language, "scenes": scenes}


def _locale(language: str, sample_locale: str) -> str:
    """The customer's own locale when it is in ``language``, else the language itself."""
    if sample_locale and sample_locale.replace("_", "-").split("-")[0] == language.split("-")[0]:
        return sample_locale
    return language


def translation_grid(board: Storyboard, values: Mapping[str, Any], links: Mapping[str, str],
                     fonts_dir: Path) -> dict[str, Any]:
    """Every translation key in every language: its text (None when missing), and where drawing it for
    this customer overflows its box (the scene, the layer, a moment it shows, its box in the frame)."""
    model = board.model
    default = model.default_language
    languages = sorted(model.translations, key=lambda lang: (lang != default, lang))
    keys = list(dict.fromkeys([*model.translations.get(default, {})] +
                              [k for lang in languages for k in model.translations[lang]]))
    cells = {key: {lang: {"text": model.translations[lang].get(key), "overflow": []} for lang in languages}
             for key in keys}
    keys_of = layer_keys(board)
    drawer = Drawer(fonts_dir)
    others: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    sample_locale = str(values.get("locale") or "")
    for lang in languages:
        try:
            timeline = plan(board, values, links, locale=_locale(lang, sample_locale),
                            size=fit(model.size, GRID_BOX))
            spots = overflowing(timeline, drawer)
        except BillcastError as exc:
            problems[lang] = str(exc).splitlines()[0]
            continue
        width, height = timeline.size
        for si, li in spots:
            scene = timeline.scenes[si]
            layer = next(layer for layer in scene.layers if layer.index == li)
            x, y, w, h = layer.box
            spot = {"scene": scene.id, "scene_index": si, "layer": li,
                    "t": round(scene.start + _shown_at(layer, scene), 3),
                    "box": [x / width, y / height, w / width, h / height]}
            names = sorted(keys_of.get((si, li), ()))
            for key in names:
                if key in cells:
                    cells[key][lang]["overflow"].append(spot)
            if not names:
                others.append(dict(spot, language=lang))
    return {"default": default, "languages": languages, "keys": keys, "cells": cells, "others": others,
            "problems": problems}
