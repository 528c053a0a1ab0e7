"""What an editor needs of a plan besides its pixels: which layers overflow their boxes, and which
translation keys each layer's texts read.

``billcast check`` cannot see a German text that does not fit its box or an
Arabic one that shapes wider than its English source: only drawing it does.
These answer that for the studio without encoding anything.
"""

from __future__ import annotations

from jinja2 import TemplateSyntaxError

from .draw import Drawer
from .storyboard import ChartLayer, Storyboard, TableLayer, TextLayer
from .templating import environment, translation_keys
from .timeline import TableSpec, TextSpec, Timeline


def overflowing(timeline: Timeline, drawer: Drawer) -> list[tuple[int, int]]:
    """(scene index, layer index in the storyboard) of every text or table that does not fit its box even
    at its minimum size, in scene and layer order; drawing each once (sprites are shared, as in renders)."""
    return [(scene.index, layer.index) for scene in timeline.scenes for layer in scene.layers
            if isinstance(layer.spec, (TextSpec, TableSpec)) and drawer.sprite(layer).truncated]


def _texts(layer: object) -> tuple[str, ...]:
    if isinstance(layer, TextLayer):
        return (layer.text,)
    if isinstance(layer, TableLayer):
        return (layer.label, layer.value)
    if isinstance(layer, ChartLayer):
        return (layer.unit, layer.legend_current, layer.legend_last_year)
    return ()


def layer_keys(board: Storyboard) -> dict[tuple[int, int], frozenset[str]]:
    """For each layer that shows text, the ``t.<key>`` translations it reads (directly, not through other
    translations), by (scene index, layer index). Templates that do not parse read nothing here: the
    check reports them."""
    found: dict[tuple[int, int], frozenset[str]] = {}
    for si, scene in enumerate(board.model.scenes):
        for li, layer in enumerate(scene.layers):
            keys: set[str] = set()
            for source in _texts(layer):
                if "t." not in source and "t[" not in source:
                    continue
                try:
                    keys |= translation_keys(environment().parse(source))
                except TemplateSyntaxError:
                    continue
            if keys:
                found[(si, li)] = frozenset(keys)
    return found
