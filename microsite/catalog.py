"""The page's texts: one YAML catalogue per language that a marketer can edit.

Each entry is plain text with ``{placeholders}``, or, where a number decides the
wording, a mapping of CLDR plural categories (``one``, ``few``, ``other``...) to
texts. Texts are not templates: a placeholder is replaced by an escaped value and
nothing else is evaluated, so neither a catalogue nor a record can add markup.
Every catalogue is checked against the English one when it is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from markupsafe import Markup, escape

from .errors import SiteError
from .locales import Formatter, pick_language

BASE_LANGUAGE = "en"
PLURAL_CATEGORIES = ("zero", "one", "two", "few", "many", "other")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_STRAY_BRACE = re.compile(r"[{}]")

Segments = tuple[tuple[Markup, str | None], ...]  # (escaped literal text, placeholder after it or None)
Entry = Markup | Segments  # a text without placeholders is kept ready, escaped


def _segments(text: str) -> Entry:
    if "{" not in text:
        return escape(text)
    parts: list[tuple[Markup, str | None]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append((escape(text[at:match.start()]), match.group(1)))
        at = match.end()
    parts.append((escape(text[at:]), None))
    return tuple(parts)


def _names(entry: Entry) -> set[str]:
    return set() if isinstance(entry, Markup) else {name for _, name in entry if name}


@dataclass(frozen=True)
class Messages:
    """One language's texts, parsed: ``text(key, **values)`` gives safe markup."""

    language: str
    entries: Mapping[str, Entry | Mapping[str, Entry]]

    def text(self, key: str, count: int | None = None, formatter: Formatter | None = None,
             **values: Any) -> Markup:
        """The text of ``key`` with its placeholders filled (values are escaped unless already markup).

        A plural entry needs ``count`` and the ``formatter`` of the page's locale, which picks the
        category; ``{n}`` is the count formatted for that locale.
        """
        entry = self.entries[key]
        if isinstance(entry, Markup):
            return entry
        if isinstance(entry, Mapping):
            if count is None or formatter is None:
                raise TypeError(f"catalogue entry {key!r} is plural: pass count= and formatter=")
            entry = entry.get(formatter.plural(count)) or entry["other"]
            values.setdefault("n", formatter.number(count))
            if isinstance(entry, Markup):
                return entry
        out = []
        for literal, name in entry:
            out.append(literal)
            if name is not None:
                out.append(escape(values[name]))
        return Markup("".join(out))

    def plain(self, key: str) -> str:
        """A text with no placeholders, unescaped (for attributes such as ``label``)."""
        entry = self.entries[key]
        if not isinstance(entry, Markup):
            raise TypeError(f"catalogue entry {key!r} has placeholders or plural forms")
        return entry.unescape()

    @cached_property
    def characters(self) -> frozenset[str]:
        """Every character of every text (placeholders aside): what the page's fonts must draw of this catalogue."""
        chars: set[str] = set()
        for entry in self.entries.values():
            for form in entry.values() if isinstance(entry, Mapping) else (entry,):
                for literal in (form,) if isinstance(form, Markup) else (literal for literal, _ in form):
                    chars.update(literal.unescape())
        return frozenset(chars)


@dataclass(frozen=True)
class Catalogs:
    """Every language's :class:`Messages`, checked against the English catalogue."""

    languages: Mapping[str, Messages]
    source: str

    def messages(self, locale: str) -> Messages:
        """The catalogue for a locale: its exact tag, then its language, then English."""
        return self.languages[pick_language(self.languages, locale, BASE_LANGUAGE)]


def default_catalog_dir() -> Path:
    return Path(str(resources.files("billcast.microsite") / "catalogs"))


@lru_cache(maxsize=8)
def load_catalogs(directory: str | Path | None = None) -> Catalogs:
    """Read and check every ``*.yaml`` catalogue of a folder (by default the shipped ones), once."""
    folder = Path(directory) if directory is not None else default_catalog_dir()
    files = sorted(folder.glob("*.yaml"))
    if not any(path.stem == BASE_LANGUAGE for path in files):
        raise SiteError(f"no {BASE_LANGUAGE}.yaml catalogue here; it is the one the others are checked against",
                        path=str(folder))
    raw = {path.stem: _read(path) for path in files}
    base = {key: _entry(value, folder / f"{BASE_LANGUAGE}.yaml", key) for key, value in raw[BASE_LANGUAGE].items()}
    languages = {}
    for language, texts in raw.items():
        path = folder / f"{language}.yaml"
        entries = {key: _entry(value, path, key) for key, value in texts.items()}
        _check_against(entries, base, path)
        languages[language] = Messages(language, MappingProxyType(entries))
    return Catalogs(MappingProxyType(languages), str(folder))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError(f"cannot read the catalogue: {exc}", path=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SiteError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=where) from None
    if not isinstance(data, dict):
        raise SiteError("must be a mapping of keys to texts", path=str(path))
    return data


def _entry(value: Any, path: Path, key: str) -> Entry | Mapping[str, Entry]:
    if isinstance(value, str):
        return _text(value, path, key)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(PLURAL_CATEGORIES))
        if unknown or "other" not in value:
            raise SiteError(f"plural forms must be among {', '.join(PLURAL_CATEGORIES)} and include 'other'"
                            + (f"; found {', '.join(map(str, unknown))}" if unknown else ""), path=str(path), field=key)
        return MappingProxyType({form: _text(text, path, f"{key}.{form}") for form, text in value.items()})
    raise SiteError("must be a text, or a mapping of plural forms to texts", path=str(path), field=key)


def _text(value: Any, path: Path, key: str) -> Entry:
    if not isinstance(value, str) or not value.strip():
        raise SiteError("must be a non-empty text", path=str(path), field=key)
    if _STRAY_BRACE.search(_PLACEHOLDER.sub("", value)):
        raise SiteError("has a brace that is not part of a {placeholder}", path=str(path), field=key)
    return _segments(value)


def _all_names(entry: Entry | Mapping[str, Entry]) -> set[str]:
    if isinstance(entry, Mapping):
        return set().union(*(_names(form) for form in entry.values())) | {"n"}
    return _names(entry)


def _check_against(entries: Mapping[str, Any], base: Mapping[str, Any], path: Path) -> None:
    """Same keys as English, same plural-ness, and no placeholder English does not fill."""
    for key in base:
        if key not in entries:
            raise SiteError("is missing (every key of en.yaml needs a text)", path=str(path), field=key)
    for key, entry in entries.items():
        if key not in base:
            raise SiteError("is not a key of en.yaml (check its spelling)", path=str(path), field=key)
        if isinstance(entry, Mapping) != isinstance(base[key], Mapping):
            raise SiteError("must have plural forms exactly where en.yaml does", path=str(path), field=key)
        extra = _all_names(entry) - _all_names(base[key])
        if extra:
            raise SiteError(f"uses {{{sorted(extra)[0]}}}, which the page does not fill here "
                            f"(it fills: {', '.join(sorted(_all_names(base[key]))) or 'nothing'})",
                            path=str(path), field=key)
