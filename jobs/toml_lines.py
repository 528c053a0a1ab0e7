"""Where each key of a TOML text is written: tomllib keeps no positions, messages want lines."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED_KEY})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED_KEY})\s*\]")
_KEY_VALUE = re.compile(rf"\s*({_DOTTED_KEY})\s*=")
_PART = re.compile(_KEY_PART)


class KeyLines:
    """Where each key of a TOML text is written, as ``("rules", 1, "variants")``: line numbers.

    tomllib keeps no positions; this reads headers and ``key =`` lines the way TOML nests them,
    which is enough to point at the line a message is about.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[Any, ...], int] = {}
        arrays: dict[tuple[str, ...], int] = {}
        table: tuple[Any, ...] = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            quotes = line.count('"""') + line.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            if match := _ARRAY_HEADER.match(line):
                parts = _parts(match[1])
                arrays[parts] = arrays.get(parts, -1) + 1
                table = self._nested(parts, arrays)
                self._lines.setdefault(table, number)
            elif match := _TABLE_HEADER.match(line):
                table = self._nested(_parts(match[1]), arrays)
                self._lines.setdefault(table, number)
            elif match := _KEY_VALUE.match(line):
                self._lines.setdefault((*table, *_parts(match[1])), number)
            in_string = quotes % 2 == 1

    @staticmethod
    def _nested(parts: tuple[str, ...], arrays: Mapping[tuple[str, ...], int]) -> tuple[Any, ...]:
        path: list[Any] = []
        for end in range(1, len(parts) + 1):
            path.append(parts[end - 1])
            if parts[:end] in arrays:
                path.append(arrays[parts[:end]])
        return tuple(path)

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        """The line of ``loc``, or of the nearest enclosing key that is written down."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self._lines:
                return self._lines[loc[:end]]
        return None


def _parts(dotted: str) -> tuple[str, ...]:
    parts = []
    for match in _PART.finditer(dotted):
        token = match[0]
        if token.startswith('"'):
            try:
                token = json.loads(token)
            except ValueError:
                token = token[1:-1]
        elif token.startswith("'"):
            token = token[1:-1]
        parts.append(token)
    return tuple(parts)
