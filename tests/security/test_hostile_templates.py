"""Storyboard texts as an attacker writes them: nothing reaches Python's internals, nothing computes without bound.

Each template here once (or in Jinja's plain sandbox) padded a text to a billion characters, nested loops,
built a number of millions of digits, or read an internal; each must now be refused with the storyboard's
file, line and field, at load time where it can be seen then, else when the text is planned.
"""

from __future__ import annotations

import resource

import pytest

from billcast.renderer import StoryboardError, StoryboardErrors, parse_storyboard, plan
from billcast.renderer.sandbox import MAX_SIZE

from conftest import LINKS
from test_storyboard import BASE

VALUES = {"first_name": "Ada", "locale": "en-US"}


def board_with(template: str):
    text = BASE.replace('{{ t.hello }}"\n        box', template.replace('"', "'") + '"\n        box')
    return parse_storyboard(text, path="b.yaml")


def refused_when_planned(template: str) -> StoryboardError:
    board = board_with(template)
    with pytest.raises(StoryboardError) as info:
        plan(board, VALUES, LINKS)
    assert (info.value.path, info.value.line, info.value.field) == ("b.yaml", 18, "scenes[0].layers[0].text")
    return info.value


HUGE = [
    '{{ "x"|center(10**9) }}',
    '{{ "%999999999d"|format(1) }}',
    '{{ "x"|indent(10**9) }}',
    '{{ "x"|indent("y" * 100000) ~ "\n" * 10 }}',
    '{{ ("a\n" * 50000)|indent(9) }}',
    '{{ "{:>999999999}".format(1) }}',
    '{{ "{:.999999999f}".format(1.0) }}',
    '{{ "{:{w}}".format(1, w=999999999) }}',
    '{{ "{0:>{1}}".format(1, 10**9) }}',
    '{{ "%.999999999f" % 1.0 }}',
    '{{ "%*d" % (999999999, 1) }}',
    '{{ "%(a)999999999s" % {"a": 1} }}',
    '{{ "x"|truncate(10**9) }}',
    '{{ ("x" * 100000)|truncate(10, end="y" * 100000) }}',
    '{{ ("x" * 100000)|wordwrap(1, wrapstring="y" * 100000) }}',
    '{{ range(100000)|join("x" * 100000) }}',
    '{{ ("a" * 100).join(range(100000)|map("string")) }}',
    '{{ "x" * 100000 * 100000 }}',
    '{{ "x" * 100001 }}',
    '{{ ("x" * 100000) ~ ("x" * 100000) }}',
    '{{ ("x" * 100000) + ("x" * 100000) }}',
    '{% set l = range(100000)|list %}{{ [l] * 100000 }}',
    '{% set a = "x" * 100000 %}{% set l = [a, a] %}{{ l|length }}',
    '{% set a = range(50000)|list %}{% set b = [a, a] %}{{ b == b|list }}',
    '{% for i in range(100000) %}{% for j in range(100000) %}{{ [1] * 10 }}{% endfor %}{% endfor %}',
    '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
    '{% for i in range(10000) %}{{ "x" * 99999 }}{% endfor %}',
    '{% set x %}{% for i in range(9000) %}{{ "y" * 99 }}{% endfor %}{% endset %}{{ x|length }}',
    '{{ 10**10000 }}',
    '{{ 2 ** 1000000 }}',
    '{{ (10**18) * (10**18) }}',
    '{{ 999999999999999999 + 2 }}',
    '{{ 1e308 * 10 }}',
    '{{ "x".center(10**9) }}',
    '{{ "x".ljust(10**9) }}',
    '{{ "1".zfill(10**9) }}',
    '{{ (1).to_bytes(10**9, "big") }}',
    '{{ ("x" * 100000).replace("x", "yy") }}',
    '{{ ("x" * 100000)|replace("x", "yy") }}',
    '{{ ("\t" * 100000).expandtabs(100) }}',
    '{{ [1]|batch(10**9, "x") }}',
    '{{ [1]|slice(10**9) }}',
    '{{ [[1]] * 100000|sum(start=[]) }}',
    '{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}',
    '{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}',
    '{% for i in range(10000) %}{{ i|money("EUR") }}{{ i|money("EUR") }}{% endfor %}',
    '{{ range(10**9)|list|length }}',
    '{{ "abc"|truncate(1) }}',
]


@pytest.mark.parametrize("template", HUGE)
def test_a_text_cannot_compute_without_bound(template: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = refused_when_planned(template)
    assert error.message  # says what was refused
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024, f"refused, but only after using {grown_kib // 1024} MiB"


@pytest.mark.parametrize(("template", "expected"), [
    ('{{ "x"|center(9) }}', "    x    "),
    ('{{ "%05d"|format(42) }}', "00042"),
    ('{{ "{:>4}".format(7) }}', "   7"),
    ('{{ "-" * 3 }}{{ 2 ** 10 }}{{ [1, 2] * 2 }}', "---1024[1, 2, 1, 2]"),
    ('{{ range(3)|join(", ") }}', "0, 1, 2"),
    ('{% for i in range(5000) %}{% endfor %}{{ "ok" }}', "ok"),
    ('{{ 10**18 }}', str(10 ** 18)),
    ('{{ ("x" * ' + str(MAX_SIZE) + ')|length }}', str(MAX_SIZE)),
    ('{{ "abcdef"|truncate(5, leeway=0) }}', "ab..."),
    ('{{ "a b c"|wordwrap(2) }}', "a\nb\nc"),
    ('{{ [3, 1, 2]|sort|first }} {{ 1 < 2 < 3 }} {{ "a" in "abc" }} {{ first_name ~ "!" }}', "1 True True Ada!"),
    ('{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m(2) }}', "<1><2>"),
])
def test_ordinary_texts_still_render(template: str, expected: str) -> None:
    timeline = plan(board_with(template), VALUES, LINKS)
    assert timeline.scenes[0].layers[0].spec.text == expected


@pytest.mark.parametrize(("template", "word"), [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
    ("{{ first_name.__class__ }}", "__class__"),
    ("{{ links['__class__'] }}", "__class__"),
    ("{{ cycler.__init__.__globals__ }}", "__init__"),
    ("{{ lipsum.__globals__['os'] }}", "__globals__"),
    ("{{ range.__self__ }}", "__self__"),
    ("{{ t|attr('_texts') }}", "attr"),
    ("{{ t._texts }}", "_texts"),
    ("{{ self }}", "self"),
    ("{{ '{0.__class__.__mro__}'.format(first_name) }}", "format field"),
    ("{% include '/etc/passwd' %}", "include"),
    ("{% import 'os' as os %}", "import"),
    ("{% extends 'base.html' %}", "extend"),
    ("{{ first_name|pprint }}", "no filter named 'pprint'"),
    ("{{ first_name|tojson }}", "no filter named 'tojson'"),
    ("{{ first_name|_loop }}", "no filter named '_loop'"),
    ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recursive"),
])
def test_attribute_gadgets_and_includes_are_refused_when_loaded(template: str, word: str) -> None:
    with pytest.raises(StoryboardErrors) as info:
        board_with("{% if false %}" + template + "{% endif %}")
    assert {e.field for e in info.value.errors} == {"scenes[0].layers[0].text"}
    assert any(word in e.message for e in info.value.errors)


@pytest.mark.parametrize("template", [
    "{{ '{0.__class__}'.format(first_name) }}",
    "{{ cycler }}{{ joiner }}{{ namespace }}{{ lipsum }}",
    "{{ (first_name|string).format_map.__self__ }}",
])
def test_gadgets_that_only_run_time_sees_are_refused_then(template: str) -> None:
    with pytest.raises(StoryboardError):
        plan(board_with(template), VALUES, LINKS)


def test_a_text_nested_too_deeply_is_a_storyboard_error() -> None:
    with pytest.raises(StoryboardErrors) as info:
        board_with("{{ " + "(" * 400 + "1" + ")" * 400 + " }}")
    assert info.value.errors[0].field == "scenes[0].layers[0].text"


def test_a_text_past_its_length_is_refused_when_loaded() -> None:
    with pytest.raises(StoryboardErrors) as info:
        board_with("x" * 10_001)
    assert "at most 10,000" in info.value.errors[0].message
