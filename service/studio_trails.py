"""Blank lines and comments that end an item of a storyboard's YAML, kept in place through structured edits.

ruamel.yaml keeps what follows an item with the item's last block-style
descendant: in the ``end`` of a block list, or in the comment slot of a
mapping's last key. Moving an item moves them along; these keep a list's blank
lines between its items when items are added, removed or moved, and give what
ended a removed item to the one before it.
"""

from __future__ import annotations

import copy
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

Trail = tuple[str, list]  # ("end", tokens of a block list's end) or ("item", [the token after a key])


def _chain(node: Any) -> list[Any]:
    """The block-style containers on the way to ``node``'s last descendant, outermost first."""
    out = []
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node) and not node.fa.flow_style():
        out.append(node)
        node = node[len(node) - 1] if isinstance(node, list) else node[list(node)[-1]]
    return out


def _slot(container: Any) -> int:
    return 0 if isinstance(container, list) else 2


def _last_key(container: Any) -> Any:
    return len(container) - 1 if isinstance(container, list) else list(container)[-1]


def trail(parent: Any, key: Any, take: bool = False) -> Trail | None:
    """What follows ``parent[key]``: found at its deepest block container, else in ``parent``'s slot for it."""
    holders = [(c, _last_key(c)) for c in _chain(parent[key])] + [(parent, key)]
    for container, last in reversed(holders):
        if container is not parent and getattr(container.ca, "end", None):
            tokens = container.ca.end
            if take:
                container.ca.end = []
            return "end", tokens
        entry = container.ca.items.get(last)
        if entry and len(entry) > _slot(container) and entry[_slot(container)] is not None:
            token = entry[_slot(container)]
            if take:
                entry[_slot(container)] = None
            return "item", [token]
    return None


def give(parent: Any, key: Any, trail: Trail) -> None:
    """Make ``trail`` follow ``parent[key]``, in the kind of place it came from (ruamel writes them apart)."""
    kind, tokens = trail
    chain = _chain(parent[key])
    if kind == "end":
        seqs = [c for c in chain if isinstance(c, CommentedSeq)]
        if seqs:
            if seqs[-1].ca.comment is None:
                seqs[-1].ca.comment = [None, None]  # ruamel writes a list's end only beside its own comment
            seqs[-1].ca.end = list(tokens)
            return
        token = copy.copy(tokens[0])
        token.value = "\n" + "".join(t.value for t in tokens)
        kind, tokens = "item", [token]
    maps = [c for c in chain if isinstance(c, CommentedMap)]
    target, last = (maps[-1], _last_key(maps[-1])) if maps else (parent, key)
    entry = target.ca.items.setdefault(last, [None, None, None, None])
    entry[_slot(target)] = tokens[0]


def _blank(trail: Trail | None) -> bool:
    return trail is not None and all(isinstance(t.value, str) and not t.value.strip("\n") for t in trail[1])


def separator(seq: Any) -> Trail | None:
    """The blank line(s) between the items of a block list, when its items are set apart by them."""
    if not isinstance(seq, CommentedSeq) or len(seq) < 2 or seq.fa.flow_style():
        return None
    return next((t for i in range(len(seq) - 1) if _blank(t := trail(seq, i))), None)


def separate(seq: Any, blank: Trail) -> None:
    """Every item but the last ends with the list's blank line; the last one with none."""
    for i in range(len(seq)):
        found = trail(seq, i)
        if i < len(seq) - 1 and found is None:
            give(seq, i, (blank[0], [copy.copy(t) for t in blank[1]]))
        elif i == len(seq) - 1 and _blank(found):
            trail(seq, i, take=True)
