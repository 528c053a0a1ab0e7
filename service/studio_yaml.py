"""Structured edits of a storyboard's YAML that keep everything else as it was written.

The studio's visual editor never rewrites a storyboard from its model: it sends
*operations* (set a value at a path, delete it, insert, move or duplicate a list
item) and :func:`edit_text` applies them to the text through ruamel.yaml's
round trip, so comments, key order, quoting, flow or block style and blank lines
of everything not edited stay byte for byte, and a visual edit diffs like a
careful hand edit. :func:`edit_data` applies the same operations to plain data,
for previews of a drag that are never written.

A text ruamel would not give back unchanged (an odd indentation, say) is edited
all the same, and only the lines the operations changed are grafted back into it.
"""

from __future__ import annotations

import copy
import difflib
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.scalarstring import (DoubleQuotedScalarString, LiteralScalarString, PlainScalarString,
                                      SingleQuotedScalarString)

from .studio_trails import give, separate, separator, trail

MAX_OPS = 64
MAX_PATH = 12
MAX_DEPTH = 8  # of a value an operation sets
MAX_NESTING = 64  # of a text edited
KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
TRAILING_KEYS = ("animate", "layers")  # new keys go before these, which end a layer or a scene by habit
_PLAIN_START = set("-?:,[]{}#&*!|>'\"%@`")


class EditError(Exception):
    """An operation that cannot be applied; the message says which and why."""


# --- operations ------------------------------------------------------------------------------------


def _path(raw: Any, where: str) -> tuple[str | int, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_PATH:
        raise EditError(f"{where}: path must be a list of at most {MAX_PATH} keys and indexes")
    parts: list[str | int] = []
    for part in raw:
        if isinstance(part, bool) or not isinstance(part, (str, int)):
            raise EditError(f"{where}: path parts are names or indexes, got {part!r}")
        if isinstance(part, int) and not 0 <= part < 10_000:
            raise EditError(f"{where}: index out of range: {part}")
        if isinstance(part, str) and not KEY_RE.fullmatch(part):
            raise EditError(f"{where}: not a key: {part[:40]!r}")
        parts.append(part)
    return tuple(parts)


def _value(value: Any, where: str, depth: int = 0) -> Any:
    """A JSON value fit for a storyboard: finite numbers, plain keys, not too deep."""
    if depth > MAX_DEPTH:
        raise EditError(f"{where}: value nested too deeply")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EditError(f"{where}: numbers must be finite")
        value = round(value, 4)
        return int(value) if value.is_integer() and abs(value) < 1e15 else value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, list):
        return [_value(v, where, depth + 1) for v in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not KEY_RE.fullmatch(key):
                raise EditError(f"{where}: not a key: {str(key)[:40]!r}")
        return {k: _value(v, where, depth + 1) for k, v in value.items()}
    raise EditError(f"{where}: not a value: {type(value).__name__}")


def parse_ops(raw: Any) -> list[dict[str, Any]]:
    """Operations from a request, checked for shape; :class:`EditError` names the first bad one."""
    if not isinstance(raw, list) or not raw or len(raw) > MAX_OPS:
        raise EditError(f"ops must be a list of 1 to {MAX_OPS} operations")
    ops = []
    for n, op in enumerate(raw):
        where = f"ops[{n}]"
        if not isinstance(op, dict) or op.get("op") not in ("set", "delete", "insert", "move", "duplicate"):
            raise EditError(f"{where}: op must be set, delete, insert, move or duplicate")
        clean: dict[str, Any] = {"op": op["op"], "path": _path(op.get("path"), where)}
        if op["op"] in ("set", "insert"):
            if "value" not in op:
                raise EditError(f"{where}: needs a value")
            clean["value"] = _value(op["value"], where)
        for name in ("index", "from", "to"):
            if name in op:
                number = op[name]
                if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 10_000:
                    raise EditError(f"{where}: {name} must be an index")
                clean[name] = number
        needed = {"insert": ("index",), "move": ("from", "to"), "duplicate": ("index",)}.get(op["op"], ())
        missing = [name for name in needed if name not in clean]
        if missing:
            raise EditError(f"{where}: {op['op']} needs {', '.join(missing)}")
        if op["op"] in ("set", "delete") and not clean["path"]:
            raise EditError(f"{where}: {op['op']} needs a path")
        ops.append(clean)
    return ops


# --- applying them (to ruamel's round-trip nodes, or to plain data) -------------------------------


def _walk(doc: Any, path: Sequence[str | int], where: str, create: bool = False) -> Any:
    node = doc
    for i, part in enumerate(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise EditError(f"{where}: no item {part} at {_dotted(path[:i]) or 'the top'}")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise EditError(f"{where}: {_dotted(path[:i]) or 'the top'} is not a mapping")
            if part not in node:
                if not create:
                    raise EditError(f"{where}: nothing at {_dotted(path[:i + 1])}")
                _put(node, part, _styled({}, flow=True))
            node = node[part]
    return node


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _scalar(new: Any, old: Any = None) -> Any:
    """A new string in the style of the one it replaces, or the house style: plain when safe, else quoted."""
    if not isinstance(new, str):
        return new
    if "\n" in new:
        return LiteralScalarString(new)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(new)
    if isinstance(old, DoubleQuotedScalarString) or not _plain_safe(new):
        return DoubleQuotedScalarString(new)
    return PlainScalarString(new) if isinstance(old, PlainScalarString) else new


def _plain_safe(text: str) -> bool:
    if not text or text != text.strip() or text[0] in _PLAIN_START or ": " in text or " #" in text \
            or text.endswith(":") or "\t" in text:
        return False
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _styled(value: Any, flow: bool | None = None) -> Any:
    """Plain data as round-trip nodes in the house style: short lists and mappings of plain values in
    flow style (``box: [80, 48, 200, 50]``, ``font: {size: 40}``), anything holding mappings in block style."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _styled(item)
        simple = all(not isinstance(v, (dict, list)) for v in value.values()) and len(value) <= 6
        node.fa.set_flow_style() if (simple if flow is None else flow) else node.fa.set_block_style()
        return node
    if isinstance(value, list):
        node = CommentedSeq([_styled(item) for item in value])
        simple = all(not isinstance(v, (dict, list)) for v in value) or (
            len(value) == 1 and isinstance(value[0], dict) and all(not isinstance(v, (dict, list))
                                                                  for v in value[0].values()))
        node.fa.set_flow_style() if (simple if flow is None else flow) else node.fa.set_block_style()
        return node
    return _scalar(value)


def _put(mapping: Any, key: str, value: Any, index: int | None = None) -> None:
    """Add ``key`` to a mapping: at ``index``, else before a trailing key (``animate``, ``layers``), else last."""
    if not isinstance(mapping, CommentedMap):
        mapping[key] = value
        return
    keys = list(mapping)
    if index is None:
        index = next((keys.index(k) for k in TRAILING_KEYS if k in keys), len(keys))
    if index >= len(keys) and keys:
        ending = trail(mapping, keys[-1], take=True)
        mapping[key] = value
        if ending is not None:
            give(mapping, key, ending)
    else:
        mapping.insert(index, key, value)


def _assign(parent: Any, key: str | int, new: Any) -> None:
    """Set ``parent[key]`` to ``new``, changing containers in place so their style and comments stay."""
    old = parent[key]
    if isinstance(new, dict) and isinstance(old, dict):
        for k in [k for k in old if k not in new]:
            _remove(old, k)
        for k, v in new.items():
            if k in old:
                _assign(old, k, v)
            else:
                _put(old, k, _styled(v) if isinstance(old, CommentedMap) else v)
        return
    if isinstance(new, list) and isinstance(old, list):
        for i, v in enumerate(new):
            if i < len(old):
                _assign(old, i, v)
            else:
                old.append(_styled(v) if isinstance(old, CommentedSeq) else v)
        while len(old) > len(new):
            _remove(old, len(old) - 1)
        return
    if isinstance(parent, (CommentedMap, CommentedSeq)):
        parent[key] = _styled(new) if isinstance(new, (dict, list)) else _scalar(new, old)
    else:
        parent[key] = new


def _remove(parent: Any, key: str | int) -> None:
    """Remove an item; a blank line or comment that followed it now follows the item before it."""
    if isinstance(parent, (CommentedMap, CommentedSeq)):
        keys = list(range(len(parent))) if isinstance(parent, list) else list(parent)
        at = keys.index(key)
        ending = trail(parent, key, take=True)
        del parent[key]
        if ending is not None and at > 0 and trail(parent, keys[at - 1]) is None:
            give(parent, keys[at - 1], ending)
        return
    del parent[key]


def apply_ops(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply checked operations to ``doc`` (round-trip nodes or plain data), in place; returns ``doc``."""
    for n, op in enumerate(ops):
        where = f"ops[{n}]"
        path = op["path"]
        kind = op["op"]
        if kind in ("set", "delete"):
            parent = _walk(doc, path[:-1], where, create=kind == "set")
            key = path[-1]
            if not isinstance(parent, (dict, list)):
                raise EditError(f"{where}: {_dotted(path[:-1]) or 'the top'} is not a mapping")
            if isinstance(key, int) != isinstance(parent, list):
                raise EditError(f"{where}: {_dotted(path)} does not fit what is there")
            if kind == "delete" or op["value"] is None:
                if (key in parent) if isinstance(parent, dict) else key < len(parent):
                    _remove(parent, key)
                continue
            if isinstance(parent, dict) and key not in parent:
                _put(parent, key, _styled(op["value"]) if isinstance(parent, CommentedMap) else op["value"],
                     op.get("index"))
            elif isinstance(parent, list) and key >= len(parent):
                raise EditError(f"{where}: no item {key} at {_dotted(path[:-1])}")
            else:
                _assign(parent, key, op["value"])
            continue
        seq = _walk(doc, path, where, create=False) if path and kind != "insert" else None
        if kind == "insert":
            parent = _walk(doc, path[:-1], where, create=True)
            if isinstance(parent, dict) and path and path[-1] not in parent:
                _put(parent, path[-1], CommentedSeq() if isinstance(parent, CommentedMap) else [])
            seq = parent[path[-1]] if path else doc
        if not isinstance(seq, list):
            raise EditError(f"{where}: {_dotted(path) or 'the top'} is not a list")
        blank = separator(seq)
        if kind == "insert":
            if op["index"] > len(seq):
                raise EditError(f"{where}: cannot insert at {op['index']} in a list of {len(seq)}")
            item = _styled(op["value"]) if isinstance(seq, CommentedSeq) else op["value"]
            _insert(seq, op["index"], item)
        elif kind == "move":
            if op["from"] >= len(seq) or op["to"] >= len(seq):
                raise EditError(f"{where}: cannot move item {op['from']} to {op['to']} in a list of {len(seq)}")
            item = seq[op["from"]]
            _remove(seq, op["from"])
            _insert(seq, op["to"], item)
        else:
            if op["index"] >= len(seq):
                raise EditError(f"{where}: no item {op['index']} to duplicate")
            twin = copy.deepcopy(seq[op["index"]])
            _unique_id(twin, seq)
            _insert(seq, op["index"] + 1, twin)
        if blank is not None:
            separate(seq, blank)
    return doc


def _insert(seq: list, index: int, item: Any) -> None:
    if isinstance(seq, CommentedSeq) and index == len(seq) and seq:
        ending = trail(seq, len(seq) - 1, take=True)
        seq.append(item)
        if ending is not None:
            give(seq, len(seq) - 1, ending)
    else:
        seq.insert(index, item)


def _unique_id(item: Any, siblings: list) -> None:
    """A copied scene (or layer with an id) gets a new id: ``intro`` -> ``intro_2``."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return
    taken = {s.get("id") for s in siblings if isinstance(s, dict)}
    stem = re.sub(r"_\d+$", "", item["id"]) or "copy"
    n = 2
    while f"{stem}_{n}" in taken:
        n += 1
    item["id"] = _scalar(f"{stem}_{n}", item["id"])


# --- the text ---------------------------------------------------------------------------------------


def _indents(text: str) -> tuple[int, int, int]:
    """The mapping indent, the sequence indent and the dash's offset the text uses (2, 4, 2 when it shows none)."""
    mapping = sequence = offset = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:]):
        if not re.match(r"^\s*(?:-\s+)?[\w\"'][^:#]*:\s*(?:#.*)?$", line):
            continue
        dash = re.match(r"^(\s*)(-\s+)?", line)
        base = len(dash.group(1)) + len(dash.group(2) or "")
        item = re.match(r"^(\s*)-(\s+)\S", following)
        deeper = len(following) - len(following.lstrip()) - base
        if item and offset is None and deeper >= 0:
            offset, sequence = deeper, deeper + 1 + len(item.group(2))
        elif not item and deeper > 0 and mapping is None:
            mapping = deeper
        if mapping is not None and offset is not None:
            break
    return mapping or 2, sequence or 4, offset if offset is not None else 2


def _yaml(text: str) -> YAML:
    mapping, sequence, offset = _indents(text)
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.allow_unicode = True
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    return y


def _dump(y: YAML, doc: Any) -> str:
    buffer = io.StringIO()
    y.dump(doc, buffer)
    return buffer.getvalue()


def _matches(a: list[str], b: list[str]) -> dict[int, int]:
    """Each line of ``a`` that is also in ``b``, in order: its index there."""
    found: dict[int, int] = {}
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            found[block.a + k] = block.b + k
    return found


def _graft(original: str, plain: str, edited: str) -> str:
    """Apply the change ``plain`` -> ``edited`` (both as ruamel writes) to ``original`` (as written): between
    lines all three share, the original's lines stay unless the edit changed something there."""
    orig, rt, new = (t.splitlines(keepends=True) for t in (original, plain, edited))
    to_orig, to_new = _matches(rt, orig), _matches(rt, new)
    anchors = [(-1, -1, -1)] + [(i, to_orig[i], to_new[i]) for i in range(len(rt)) if i in to_orig and i in to_new]
    anchors.append((len(rt), len(orig), len(new)))
    out: list[str] = []
    for (a, ao, an), (b, bo, bn) in zip(anchors, anchors[1:]):
        if ao >= bo or an >= bn:
            continue  # the matchings disagree here (cannot, as both run in order): keep going
        out.extend(orig[ao + 1:bo] if new[an + 1:bn] == rt[a + 1:b] else new[an + 1:bn])
        if b < len(rt):
            out.append(orig[bo])
    return "".join(out)


def _shallow(text: str) -> None:
    """Refuse, cheaply, a text nested deeper than a storyboard ever is (ruamel would take seconds to say so)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_NESTING:
                    raise EditError("the text is nested too deeply: fix it in the code view first")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError as exc:
        raise EditError(f"the text is not valid YAML ({str(exc).splitlines()[0][:120]}): "
                        "fix it in the code view first") from None


class Editor:
    """Applies operations to texts; keeps the last few parsed documents, so a run of edits, each on the
    text the last one made, parses the YAML once."""

    def __init__(self, keep: int = 8) -> None:
        self._docs: OrderedDict[str, Any] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def edit(self, text: str, ops: list[dict[str, Any]]) -> str:
        """``text`` with ``ops`` applied; :class:`EditError` when the text is not YAML or an op does not fit."""
        y = _yaml(text)
        with self._lock:
            doc = self._docs.pop(text, None)
        cached = doc is not None  # kept only when ruamel writes it back exactly as ``text``
        if doc is None:
            _shallow(text)
            try:
                doc = y.load(text)
            except (RuamelError, RecursionError, ValueError) as exc:
                raise EditError(f"the text is not valid YAML ({str(exc).splitlines()[0][:120]}): "
                                "fix it in the code view first") from None
        if not isinstance(doc, CommentedMap):
            raise EditError("the storyboard must be a YAML mapping: fix it in the code view first")
        plain = text if cached else _dump(y, doc)
        apply_ops(doc, ops)
        edited = _dump(y, doc)
        result = edited if plain == text else _graft(text, plain, edited)
        if result.endswith("\n\n") and not text.endswith("\n\n"):
            result = result.rstrip("\n") + "\n"  # a blank line that ended a removed last item
        if result == edited:
            with self._lock:
                self._docs[result] = doc
                while len(self._docs) > self._keep:
                    self._docs.popitem(last=False)
        return result


def edit_data(data: Any, ops: list[dict[str, Any]]) -> Any:
    """The same operations on plain data (a deep copy of it): what a drag looks like before it is written."""
    return apply_ops(copy.deepcopy(data), ops)
