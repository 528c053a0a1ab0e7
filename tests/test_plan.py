"""Planning: a pure function from storyboard, values and links to a timeline."""

from __future__ import annotations

import builtins
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2 import TemplateError

from billcast.jobs import parse_record, record_values
from billcast.renderer import StoryboardErrors, load_storyboard, parse_storyboard, plan
from billcast.renderer.errors import StoryboardError
from billcast.renderer.templating import compiled_template
from billcast.renderer.timeline import ChartSpec, QRSpec, TableSpec, TextSpec

from conftest import LINKS, ROOT, sample
from test_storyboard import BASE

BILL = ROOT / "storyboards" / "bill_explainer.yaml"


def values(customer_id: str = "IT-000123", **changes) -> dict:
    obj = sample(customer_id)
    obj.update(changes)
    return record_values(parse_record(obj))


def texts(timeline) -> list[str]:
    return [layer.spec.text for scene in timeline.scenes for layer in scene.layers
            if isinstance(layer.spec, TextSpec)]


def test_plan_does_no_io() -> None:
    board = load_storyboard(BILL)
    plan(board, values("IT-000124"), LINKS)  # Babel reads its locale data once per process
    vals = values()
    touched = []

    def refuse(name):
        def call(*args, **kwargs):
            touched.append(name)
            raise AssertionError(f"plan called {name}")
        return call

    saved = builtins.open, Path.stat, subprocess.Popen, os.stat
    builtins.open, Path.stat, subprocess.Popen, os.stat = (refuse("open"), refuse("Path.stat"), refuse("Popen"),
                                                            refuse("os.stat"))
    try:
        timeline = plan(board, vals, LINKS)
    finally:
        builtins.open, Path.stat, subprocess.Popen, os.stat = saved
    assert touched == [] and timeline.frames == 750


def test_plan_is_deterministic_and_leaves_its_arguments_alone() -> None:
    board = load_storyboard(BILL)
    vals = values()
    before = repr(vals)
    assert plan(board, vals, LINKS) == plan(board, vals, LINKS)
    assert repr(vals) == before


def test_money_dates_and_language_follow_the_locale() -> None:
    board = load_storyboard(BILL)
    it = texts(plan(board, values(), LINKS))
    assert "Ciao Maria," in it and "71,47\xa0€" in it and "25 novembre 2026" in it
    de = texts(plan(board, values(locale="de-DE"), LINKS))
    assert "Hallo Maria," in de and "71,47\xa0€" in de and "25. November 2026" in de
    us = texts(plan(board, values("US-001234"), LINKS))
    assert any(t.startswith("$") for t in us) and "November 25, 2026" in us
    ar = plan(board, values("EG-000789"), LINKS)
    assert ar.direction == "rtl" and ar.language == "ar"
    assert any(t.startswith("مرحبًا") for t in texts(ar))


def test_unknown_language_falls_back_to_the_default() -> None:
    timeline = plan(load_storyboard(BILL), values(locale="fr-FR"), LINKS)
    assert timeline.language == "en" and "Hello Maria," in texts(timeline)


def test_a_missing_key_falls_back_per_key(tmp_path: Path) -> None:
    text = BASE.replace('    hello: "Ciao {{ first_name }}"\n', '    other: "x"\n').replace(
        '    hello: "Hello {{ first_name }}"\n', '    hello: "Hello {{ first_name }}"\n    other: "y"\n')
    board = parse_storyboard(text, path="b.yaml")
    timeline = plan(board, {"first_name": "Ada", "locale": "it-IT"}, LINKS)
    assert texts(timeline) == ["Hello Ada"]


def test_a_missing_field_names_storyboard_line_and_field() -> None:
    board = parse_storyboard(BASE.replace("{{ t.hello }}\"\n        box", "{{ account.balance }}\"\n        box"),
                             path="b.yaml")
    with pytest.raises(StoryboardError) as info:
        plan(board, {"first_name": "Ada"}, LINKS)
    err = info.value
    assert (err.path, err.line, err.field) == ("b.yaml", 18, "scenes[0].layers[0].text")
    assert "'account' is undefined" in err.message


def test_a_missing_field_inside_a_translation_points_at_the_translation() -> None:
    board = parse_storyboard(BASE, path="b.yaml")
    with pytest.raises(StoryboardError) as info:
        plan(board, {"locale": "it-IT"}, LINKS)
    assert (info.value.line, info.value.field) == (10, "translations.it.hello")


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ first_name.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{% include '/etc/passwd' %}",
    "{{ self.__init__ }}",
    "{{ range.__self__ }}",
    "{{ '{0.__class__.__mro__}'.format(first_name) }}",
    "{{ range(10**9) | list | length }}",  # the memory bombs: refused, not attempted
    "{{ 'a' * 10**9 }}",
    "{{ [1, 2] * 10**8 }}",
    "{{ 2 ** 1000000 }}",
])
def test_the_sandbox_holds(template: str) -> None:
    text = BASE.replace("{{ t.hello }}\"\n        box", template.replace('"', "'") + "\"\n        box")
    values = {"first_name": "Ada", "locale": "en-US"}
    with pytest.raises(StoryboardError) as info:  # refused when loaded (internals, self, include) or planned
        plan(parse_storyboard(text, path="b.yaml"), values, LINKS)
    assert info.value.field == "scenes[0].layers[0].text"
    with pytest.raises((TemplateError, ValueError, TypeError, ArithmeticError, LookupError, AttributeError)):
        compiled_template(template).render(values)  # and the sandbox holds without the load's scan


@pytest.mark.parametrize(("template", "word"), [
    ("{% if false %}{{ range.__self__ }}{% endif %}", "__self__"),
    ("{{ links['__class__'] }}", "__class__"),
    ("{{ self }}", "self"),
    ("{{ t|attr('_texts') }}", "attr"),
    ("{% import 'os' as os %}", "import"),
    ("{% extends 'base.html' %}", "extend"),
])
def test_what_the_sandbox_would_stop_is_refused_when_loaded_even_in_a_branch_never_taken(template: str,
                                                                                      word: str) -> None:
    text = BASE.replace("{{ t.hello }}\"\n        box", template.replace('"', "'") + "\"\n        box")
    with pytest.raises(StoryboardErrors) as info:
        parse_storyboard(text, path="b.yaml")
    assert [(e.line, e.field) for e in info.value.errors] == [(18, "scenes[0].layers[0].text")]
    assert word in info.value.errors[0].message


def test_small_ranges_powers_and_repeats_still_work() -> None:
    template = "{{ range(3) | list | length }} {{ 2 ** 10 }} {{ '-' * 3 }}"
    board = parse_storyboard(BASE.replace("{{ t.hello }}\"\n        box", template.replace('"', "'") +
                                          "\"\n        box"), path="b.yaml")
    assert texts(plan(board, {"first_name": "Ada", "locale": "en-US"}, LINKS)) == ["3 1024 ---"]


def test_yaml_aliases_that_expand_to_billions_are_refused_at_once() -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    with pytest.raises(StoryboardError, match="aliases") as info:
        parse_storyboard("\n".join(rows) + "\n", path="bomb.yaml")
    assert info.value.line == 1


def test_values_are_text_not_templates() -> None:
    board = parse_storyboard(BASE, path="b.yaml")
    name = "{{ 7 * 7 }} {% raw %} %s %{pts} \\n <b>"
    timeline = plan(board, {"first_name": name, "locale": "en-US"}, LINKS)
    assert texts(timeline) == [f"Hello {name}"]


def test_scene_frames_add_up_to_the_duration() -> None:
    text = BASE.replace("fps: 10", "fps: 25").replace("    duration: 2\n", "    duration: 0.33\n")
    text += "  - {id: two, duration: 0.33}\n  - {id: three, duration: 0.34}\n"
    text = text.replace("poster_time: 0.5", "poster_time: 0.1")
    timeline = plan(parse_storyboard(text, path="b.yaml"), {"first_name": "A"}, LINKS)
    assert timeline.frames == 25
    spans = [(s.start_frame, s.frames) for s in timeline.scenes]
    assert spans == [(0, 8), (8, 8), (16, 9)]
    assert all(a[0] + a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_rtl_mirrors_the_layout_and_the_edges() -> None:
    board = load_storyboard(BILL)
    ltr = plan(board, values(), LINKS)
    rtl = plan(board, values(locale="ar-EG"), LINKS)
    greet_l = ltr.scenes[1].layers[1]
    greet_r = rtl.scenes[1].layers[1]
    assert greet_l.box[0] == 80 and greet_r.box[0] == 1280 - 80 - 1120
    assert greet_l.spec.align == "left" and greet_r.spec.align == "right"
    slide_l = next(a for a in greet_l.anims if a.type == "slide_in")
    slide_r = next(a for a in greet_r.anims if a.type == "slide_in")
    assert slide_l.offset == (-80.0, 0.0) and slide_r.offset == (80.0, 0.0)
    cta = rtl.ctas[0]
    assert cta.box[0] == pytest.approx((1280 - 80 - 460) / 1280)


def test_output_size_scales_boxes_and_fonts() -> None:
    timeline = plan(load_storyboard(BILL), values(), LINKS, size=(320, 180), fps=10)
    layer = timeline.scenes[1].layers[1]
    assert layer.box == (20.0, 55.0, 280.0, 50.0) and layer.spec.size == 21.0
    assert timeline.frames == 300 and timeline.fps == 10


def test_when_hides_layers_and_ctas_for_customers_in_credit() -> None:
    timeline = plan(load_storyboard(BILL), values("IT-000342"), LINKS)
    assert Decimal(sample("IT-000342")["bill"]["total"]) < 0
    assert timeline.ctas == ()
    pay = timeline.scenes[-1]
    assert not any(isinstance(layer.spec, QRSpec) for layer in pay.layers)
    assert "Il tuo credito" in texts(timeline) and "45,45\xa0€" in texts(timeline)


def test_cta_times_are_absolute() -> None:
    timeline = plan(load_storyboard(BILL), values(), LINKS)
    (cta,) = timeline.ctas
    assert (cta.start, cta.end, cta.action, cta.label) == (24.6, 30.0, "pay", "Paga ora")


def test_chart_highlights_this_month_and_the_same_month_last_year() -> None:
    timeline = plan(load_storyboard(BILL), values(), LINKS)
    chart = next(l.spec for l in timeline.scenes[3].layers if isinstance(l.spec, ChartSpec))
    assert len(chart.bars) == 13
    roles = [b.role for b in chart.bars]
    assert roles[0] == "last_year" and roles[-1] == "current" and roles.count("other") == 11
    assert chart.bars[-1].label == "ott" and chart.bars[-1].caption == "212 kWh"


def test_no_usage_shows_a_note_instead_of_a_chart() -> None:
    timeline = plan(load_storyboard(BILL), values("DE-000457"), LINKS)
    usage = timeline.scenes[3]
    assert not any(isinstance(l.spec, ChartSpec) for l in usage.layers)
    assert any("Verbrauchsverlauf" in t for t in texts(timeline))


def test_table_rows_are_formatted_per_row() -> None:
    timeline = plan(load_storyboard(BILL), values(), LINKS)
    table = next(l.spec for l in timeline.scenes[2].layers if isinstance(l.spec, TableSpec))
    assert table.rows[0] == ("Spesa per la materia energia", "38,40\xa0€")
    assert len(table.rows) == 4


def test_qr_needs_its_link() -> None:
    with pytest.raises(StoryboardError, match="no link named 'pay'") as info:
        plan(load_storyboard(BILL), values(), {"page": LINKS["page"]})
    assert info.value.field == "scenes[5].layers[5].link"


@pytest.mark.parametrize("path", sorted((ROOT / "storyboards").glob("*.yaml")), ids=lambda p: p.name)
def test_every_storyboard_plans_for_every_sample_customer_it_suits(path: Path) -> None:
    board = load_storyboard(path)
    for obj in [sample(c) for c in ("IT-000123", "IT-000124", "DE-000512", "EG-000790", "US-001235", "US-001302")]:
        if board.model.purpose != "bill" and obj.get("debt") is None:
            continue
        timeline = plan(board, record_values(parse_record(obj)), LINKS)
        assert abs(timeline.duration - board.duration) < 1 / board.model.fps
