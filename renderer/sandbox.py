"""A Jinja sandbox that bounds what a template may compute, not only what it may reach.

Jinja's sandbox keeps a template away from Python internals; it does not stop
``{{ "x"|center(10**9) }}``, nested loops or a number of a million digits. Here
every value a template computes is measured: texts and lists hold at most
``MAX_SIZE`` characters or items (counted deep, so a list of big lists is big),
integers stay within ``MAX_INT``, floats finite; one render runs at most
``MAX_ITERATIONS`` loop iterations, ``MAX_STEPS`` operations (filters, calls,
operators, comparisons) and computes at most ``MAX_WORK`` characters in all.
Whatever could amplify (padding, repeating, joining, replacing, format widths,
powers) is checked *before* it runs; everything else after. A refusal is a
``SecurityError`` (a ``TemplateError``) whose message says what was refused.
"""

from __future__ import annotations

import math
import operator
import re
import types
from collections.abc import Callable, Mapping
from decimal import Decimal
from string import Formatter
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import FilterArgumentError, SecurityError, TemplateSyntaxError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import _PassArg
from markupsafe import Markup

MAX_SIZE = 100_000  # characters of a text, items of a list (deep), in any one value
MAX_ITERATIONS = 10_000  # loop iterations in one render
MAX_STEPS = 100_000  # filters, calls, operators and comparisons in one render
MAX_WORK = 2_000_000  # characters and items computed in one render, all values added up
MAX_INT = 10 ** 18  # no number of a million digits
MAX_DEPTH = 32  # macros called inside macros
MAX_NESTING = 100  # lists and maps inside each other

# Jinja's filters a storyboard text may use; the rest (attr, pprint, tojson, urlize, striptags, xmlattr,
# random, safe, ...) read internals, are slow on hostile input, or make no sense in a video.
ALLOWED_FILTERS = frozenset("""abs batch capitalize center count d default dictsort first float format groupby
    indent int items join last length list lower map max min reject rejectattr replace reverse round select
    selectattr slice sort string sum title trim truncate unique upper wordcount wordwrap""".split())

_CONTAINERS = (list, tuple, dict, set, frozenset)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _refuse(message: str) -> SecurityError:
    return SecurityError(message)


class Budget:
    """What one render has spent so far, and the deep size of each value it has measured."""

    __slots__ = ("iterations", "steps", "work", "depth", "_sizes")

    def __init__(self) -> None:
        self.iterations = self.steps = self.work = self.depth = 0
        self._sizes: dict[int, tuple[Any, int]] = {}  # id -> (value, size): the value kept so the id stays its

    def step(self, what: str) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _refuse(f"{what}: more than {MAX_STEPS:,} operations in one text is not allowed")

    def iterate(self, iterable: Any) -> Any:
        for item in iterable:
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise _refuse(f"more than {MAX_ITERATIONS:,} loop iterations in one text are not allowed")
            yield item

    def size(self, value: Any, depth: int = 0) -> int:
        """Characters of a text, items of a container counted deep (stops counting past ``MAX_SIZE``)."""
        if isinstance(value, (str, bytes)):
            return len(value)
        if not isinstance(value, _CONTAINERS):
            return 1
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if depth > MAX_NESTING:
            raise _refuse("values nested this deep are not allowed")
        total = 1
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            if isinstance(item, tuple) and isinstance(value, dict):
                total += self.size(item[0], depth + 1) + self.size(item[1], depth + 1)
            else:
                total += self.size(item, depth + 1)
            if total > MAX_SIZE:
                break
        self._sizes[id(value)] = (value, total)
        return total

    def result(self, value: Any, what: str) -> Any:
        """``value`` if it is within bounds, counted as work; else a refusal naming ``what`` made it."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise _refuse(f"{what}: numbers beyond ±10**18 are not allowed")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _refuse(f"{what}: the result is not a finite number")
        elif isinstance(value, Decimal):
            if not value.is_finite() or abs(value) > MAX_INT:
                raise _refuse(f"{what}: numbers beyond ±10**18 are not allowed")
        size = self.size(value)
        if size > MAX_SIZE:
            raise _refuse(f"{what}: a result of more than {MAX_SIZE:,} characters or items is not allowed")
        self.work += size
        if self.work > MAX_WORK:
            raise _refuse(f"{what}: computing more than {MAX_WORK:,} characters in one text is not allowed")
        return value

    def text(self, value: Any, what: str) -> str:
        """``str(value)``, bounded: the value is measured before it is turned into text."""
        if not isinstance(value, str):
            self.result(value, what)
            value = str(value)
        return self.result(value, what)


class BoundedContext(Context):
    """A render's context, carrying its ``Budget``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = Budget()


def budget_of(context: Any) -> Budget:
    budget = getattr(context, "budget", None)
    if budget is None:
        raise _refuse("this environment renders with its own context only")
    return budget


# --- checks before an operation that could amplify ------------------------------------------------

def _check_width(what: str, width: Any) -> None:
    if isinstance(width, (int, float, Decimal)) and not isinstance(width, bool) and abs(width) > MAX_SIZE:
        raise _refuse(f"{what}: a width or count above {MAX_SIZE:,} is not allowed, got {width}")


def _check_estimate(what: str, estimate: int) -> None:
    if estimate > MAX_SIZE:
        raise _refuse(f"{what}: a result of more than {MAX_SIZE:,} characters is not allowed")


def _check_printf(fmt: str, args: Any) -> None:
    """``"%999999999d" % 1`` pads before anything could measure it: widths are checked first."""
    star = False
    for match in _PRINTF.finditer(fmt):
        for part in match.groups():
            if part == "*":
                star = True
            elif part is not None:
                _check_width("format", int(part))
    if star:
        for arg in args if isinstance(args, (tuple, list)) else (args,):
            _check_width("format", arg)


def _check_format_spec(spec: str) -> None:
    for digits in _DIGITS.findall(spec):
        _check_width("format", int(digits))


def _check_replace(what: str, text: str, old: Any, new: Any, count: int = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_estimate(what, len(text) + hits * max(0, len(new) - len(old)))


def _check_join(budget: Budget, what: str, separator: Any, items: list[Any]) -> None:
    length = sum(len(x) if isinstance(x, str) else 25 * budget.size(x) for x in items)
    _check_estimate(what, length + max(0, len(items) - 1) * len(str(separator)))


def _arg(args: tuple, kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _pre_filter(budget: Budget, name: str, value: Any, args: tuple, kwargs: dict) -> tuple[Any, tuple]:
    """Refuse a filter call that would compute too much; returns the (possibly materialised) value."""
    if name in ("center", "truncate", "batch", "slice"):
        _check_width(name, _arg(args, kwargs, 0, {"center": "width", "truncate": "length", "batch": "linecount",
                                                  "slice": "slices"}[name], 0))
        if name == "truncate":
            _check_width(name, _arg(args, kwargs, 3, "leeway", 0))
    elif name == "indent":
        width = _arg(args, kwargs, 0, "width", 4)
        _check_width(name, width)
        pad = len(width) if isinstance(width, str) else int(width) if isinstance(width, int) else 0
        _check_estimate(name, len(str(value)) + (str(value).count("\n") + 1) * pad)
    elif name == "wordwrap":
        width = _arg(args, kwargs, 0, "width", 79)
        _check_width(name, width)
        text = str(value)
        wrap = _arg(args, kwargs, 2, "wrapstring", None) or "\n"
        lines = min(len(text), 2 * len(text) // max(1, int(width) - 1) if isinstance(width, int) else len(text))
        _check_estimate(name, len(text) + (lines + text.count("\n") + 1) * len(str(wrap)))
    elif name == "format":
        _check_printf(str(value), args or kwargs)
    elif name == "replace":
        _check_replace(name, str(value), *(_arg(args, kwargs, i, n, d)
                                           for i, n, d in ((0, "old", ""), (1, "new", ""), (2, "count", None))))
    elif name == "join" and _arg(args, kwargs, 1, "attribute", None) is None:
        value = value if isinstance(value, (str, list, tuple)) else [budget.result(x, name) for x in value]
        _check_join(budget, name, _arg(args, kwargs, 0, "d", ""), list(value))
    elif name == "sum":
        start = _arg(args, kwargs, 1, "start", 0)
        if not isinstance(start, (int, float, Decimal)):
            raise _refuse("sum adds numbers: its start must be a number")
    return value, args


def _pre_method(method: Any, args: tuple, kwargs: dict) -> None:
    """Refuse a built-in method call that would compute too much (``'x'.center(10**9)``,
    ``(1).to_bytes(10**9)``): no number argument above ``MAX_SIZE``, and a bound on joins and replaces."""
    name = getattr(method, "__name__", "call")
    for arg in (*args, *kwargs.values()):
        _check_width(name, arg)
    owner = getattr(method, "__self__", None)
    if isinstance(owner, str):
        if name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            _check_estimate(name, len(owner) + owner.count("\t") * (size if isinstance(size, int) else 0))
        elif name == "replace":
            _check_replace(name, owner, *args[:3])


class _BoundedFormatterMixin(Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_format_spec(format_spec)
        return super().format_field(value, format_spec)


class _BoundedFormatter(_BoundedFormatterMixin, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFormatterMixin, SandboxedEscapeFormatter):
    pass


# --- the syntax tree, before code is generated -------------------------------------------------------

def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _guard(node: nodes.Node) -> nodes.Node:
    """Route what Jinja compiles to plain Python through a check: loops count their iterations, literal
    lists and slices are measured, ``~`` and comparisons are measured and counted."""
    for field, value in node.iter_fields():
        if isinstance(value, list):
            setattr(node, field, [_guard(v) if isinstance(v, nodes.Node) else v for v in value])
        elif isinstance(value, nodes.Node):
            setattr(node, field, _guard(value))
    if isinstance(node, nodes.For):
        if node.recursive:
            raise TemplateSyntaxError("recursive loops are not available in storyboard texts", node.lineno)
        node.iter = _filter(node.iter, "_loop")
    elif isinstance(node, (nodes.List, nodes.Dict)) or (isinstance(node, nodes.Tuple) and node.ctx == "load"):
        return _filter(node, "_value")
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
        return _filter(node, "_value")
    elif isinstance(node, nodes.Concat):
        return _filter(nodes.List(node.nodes, lineno=node.lineno), "_concat")
    elif isinstance(node, nodes.Compare):
        parts: list[nodes.Expr] = [node.expr]
        for op in node.ops:
            parts += [nodes.Const(op.op, lineno=node.lineno), op.expr]
        return _filter(nodes.List(parts, lineno=node.lineno), "_compare")
    return node


class _GuardedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        super().visit_Template(_guard(node), frame)


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le, "gt": operator.gt,
    "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b}


@pass_context
def _loop(context: Any, iterable: Any) -> Any:
    return budget_of(context).iterate(iterable)


@pass_context
def _value(context: Any, value: Any) -> Any:
    return budget_of(context).result(value, "value")


@pass_context
def _concat(context: Any, parts: list[Any]) -> str:
    budget = budget_of(context)
    budget.step("~")
    texts = [budget.text(part, "~") for part in parts]
    _check_estimate("~", sum(map(len, texts)))
    return budget.result("".join(texts), "~")


@pass_context
def _compare(context: Any, parts: list[Any]) -> bool:
    budget = budget_of(context)
    left = parts[0]
    for i in range(1, len(parts), 2):
        op, right = parts[i], parts[i + 1]
        budget.step(op)
        budget.work += budget.size(left) + budget.size(right)
        if not _COMPARE[op](left, right):
            return False
        left = right
    return True


# --- the environment -------------------------------------------------------------------------------------

class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox in which every result, loop and operation is bounded (see the module)."""

    context_class = BoundedContext
    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        builtin = self.filters
        self.filters = {}
        self.add_filters(**{name: builtin[name] for name in ALLOWED_FILTERS})
        self.filters.update(_loop=_loop, _value=_value, _concat=_concat, _compare=_compare)
        self.globals.clear()
        self.finalize = _finalize

    def add_filters(self, **filters: Callable[..., Any]) -> None:
        """Make filters available, each wrapped in the checks of this sandbox."""
        for name, func in filters.items():
            self.filters[name] = _bounded_filter(name, func)

    def concat(self, parts: Any) -> str:  # type: ignore[override]
        """The output of a render, a macro or a ``{% set %}`` block: at most ``MAX_SIZE`` characters."""
        out, total = [], 0
        for part in parts:
            total += len(part)
            if total > MAX_SIZE:
                raise _refuse(f"an output of more than {MAX_SIZE:,} characters is not allowed")
            out.append(part)
        return "".join(out)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        budget = budget_of(context)
        budget.step(operator_)
        if operator_ == "**":
            _check_power(left, right)
        elif operator_ == "*":
            _check_product(budget, left, right)
        elif operator_ == "%" and isinstance(left, str):
            _check_printf(left, right)
        return budget.result(super().call_binop(context, operator_, left, right), operator_)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = budget_of(__context)
        name = getattr(__obj, "__name__", None) or getattr(__obj, "name", None) or "call"
        budget.step(str(name))
        if isinstance(__obj, types.BuiltinMethodType):
            _pre_method(__obj, args, kwargs)
            if name == "join" and isinstance(getattr(__obj, "__self__", None), str) and args:
                items = [budget.result(item, "join") for item in args[0]]
                _check_join(budget, "join", __obj.__self__, items)
                args = (items, *args[1:])
        if not isinstance(__obj, Macro):
            return budget.result(super().call(__context, __obj, *args, **kwargs), str(name))
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH:
                raise _refuse(f"macros called more than {MAX_DEPTH} deep are not allowed")
            return budget.result(super().call(__context, __obj, *args, **kwargs), str(name))
        finally:
            budget.depth -= 1

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` with every field's width and precision checked before it pads."""
        if super().wrap_str_format(value) is None:
            return None
        owner = value.__self__
        formatter = _BoundedEscapeFormatter(self, escape=owner.escape) if isinstance(owner, Markup) \
            else _BoundedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map":
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return wrapper


@pass_context
def _finalize(context: Any, value: Any) -> Any:
    return budget_of(context).text(value, "output")


def _check_power(left: Any, right: Any) -> None:
    if isinstance(right, (int, float, Decimal)) and not isinstance(right, bool) and abs(right) > 10_000:
        raise _refuse(f"an exponent above 10,000 is not allowed, got {right}")
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if (abs(left).bit_length() - 1) * right > 64:
            raise _refuse("**: numbers beyond ±10**18 are not allowed")


def _check_product(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
        seq, count = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
        if isinstance(count, int) and count > 0 and budget.size(seq) * count > MAX_SIZE:
            raise _refuse(f"repeating to more than {MAX_SIZE:,} characters or items is not allowed")
    elif isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 128:
        raise _refuse("*: numbers beyond ±10**18 are not allowed")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a filter of this sandbox: counted, its amplifying arguments checked first, its result after."""
    passes = _PassArg.from_obj(func)

    @pass_context
    def bounded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = budget_of(context)
        budget.step(name)
        value, args = _pre_filter(budget, name, value, args, kwargs)
        first = {_PassArg.context: (context,), _PassArg.eval_context: (context.eval_ctx,),
                 _PassArg.environment: (context.environment,)}.get(passes, ())  # type: ignore[arg-type]
        try:
            result = func(*first, value, *args, **kwargs)
        except AssertionError as exc:  # Jinja checks some arguments with assert (truncate's length)
            raise FilterArgumentError(f"{name}: {exc}") from None
        return budget.result(result, name)

    bounded.__name__ = name
    return bounded
