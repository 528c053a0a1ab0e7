"""`when` expressions: sandboxed Jinja over a customer record's values, checked before any record is seen.

A value the record lacks (``debt.days_past_due`` for a customer with no debt) is
*missing*: false, equal to nothing, neither greater nor smaller than anything.
A name or field that no record can have is a typo, found by :func:`when_problems`
from the record model when the campaign loads. The sandbox has no globals, no
``random``, and no attribute starting with ``_``.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Union, get_args, get_origin

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser
from pydantic import BaseModel

from billcast.renderer import BoundedSandbox

from .records import Record

SAFE_ERRORS = (UndefinedError, SecurityError, TypeError, ArithmeticError)  # their messages name types, not values


def evaluate(source: str, values: Mapping[str, Any]) -> bool:
    """Whether the expression holds for these values (raises whatever the expression raises)."""
    return bool(_compiled(source)(values))


def value_of(source: str, values: Mapping[str, Any]) -> Any:
    """The expression's value for these values; a missing one is ``None``."""
    result = _compiled(source)(values)
    return None if isinstance(result, _Missing) else result


class _Missing(ChainableUndefined):
    """A value the record does not have: false, and neither greater nor smaller than anything.

    Reading further (``debt.plan_offer.installments``) stays missing; arithmetic on it fails.
    """

    __slots__ = ()

    def _never(self, other: object) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _never  # type: ignore[assignment]


class _WhenEnvironment(BoundedSandbox):  # bounded like storyboard texts: no "x"|center(10**9)
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"reading {attribute!r} of a {type(obj).__name__} is not allowed")


@lru_cache(maxsize=1)
def _environment() -> _WhenEnvironment:
    env = _WhenEnvironment(undefined=_Missing, autoescape=False)
    env.globals.clear()  # no range, lipsum, cycler, namespace...: only the record's values
    return env  # and no random filter: the same record must always get the same storyboard


@lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return _environment().compile_expression(source, undefined_to_none=False)


def when_problems(source: str) -> list[str]:
    """Why an expression cannot be used, checked once when the campaign loads."""
    try:
        _compiled(source)
        parser = Parser(_environment(), source, state="variable")
        expression = parser.parse_expression()
    except TemplateSyntaxError as exc:
        return [f"is not a valid expression: {exc.message}"]
    for node in _inner_first(expression):  # the first problem only: the ones after it follow from it
        problem = _name_problem(node) if isinstance(node, nodes.Name) else _field_problem(node)
        if problem:
            return [problem]
    return []


def _inner_first(node: nodes.Node) -> Iterator[nodes.Node]:
    for child in node.iter_child_nodes():
        yield from _inner_first(child)
    yield node


def _name_problem(node: nodes.Name) -> str | None:
    if node.name in Record.model_fields:
        return None
    close = difflib.get_close_matches(node.name, list(Record.model_fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (they are: {', '.join(Record.model_fields)})"
    return f"{node.name!r} is not a field of a customer record{hint}"


def _field_problem(node: nodes.Node) -> str | None:
    if not isinstance(node, (nodes.Getattr, nodes.Getitem)) or (key := _key_of(node)) is None:
        return None
    if key.startswith("_"):
        return f"{_text(node)}: names starting with '_' may not be read"
    shape = _shape(node.node)
    if isinstance(shape, type) and key not in shape.model_fields:
        close = difflib.get_close_matches(key, list(shape.model_fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (it has: {', '.join(shape.model_fields)})"
        return f"{_text(node.node)} has no field {key!r}{hint}"
    return None


@dataclass(frozen=True)
class _Items:
    """The shape of a list whose items have ``item``'s shape."""

    item: type[BaseModel] | _Items | None


def _unwrap(annotation: Any) -> type[BaseModel] | _Items | None:
    """The record model (or list of them) behind a field's annotation; None for plain values and maps."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        elif origin in (tuple, list):
            args = get_args(annotation)
            return _Items(_unwrap(args[0])) if args else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        else:
            return None


def _key_of(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    arg = node.arg
    return arg.value if isinstance(arg, nodes.Const) and isinstance(arg.value, str) else None


def _shape(node: nodes.Node) -> type[BaseModel] | _Items | None:
    """What a record value at ``node`` is, as far as it can be told before any record is seen."""
    if isinstance(node, nodes.Name):
        info = Record.model_fields.get(node.name)
        return _unwrap(info.annotation) if info else None
    if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return None
    base = _shape(node.node)
    if isinstance(base, _Items) and isinstance(node, nodes.Getitem):
        return base.item
    key = _key_of(node)
    if isinstance(base, type) and key in base.model_fields:
        return _unwrap(base.model_fields[key].annotation)
    return None


def _text(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_text(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else "..."
        return f"{_text(node.node)}[{key!r}]"
    return "(...)"
