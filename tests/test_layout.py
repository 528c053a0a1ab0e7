"""What the studio reads of a plan: each planned layer's place in the storyboard, the layers whose text
does not fit, and the translation keys each layer reads."""

from __future__ import annotations

from billcast.jobs import parse_record, record_values
from billcast.renderer import Drawer, default_fonts_dir, layer_keys, load_storyboard, overflowing, parse_storyboard, plan
from billcast.renderer.timeline import TextSpec

from conftest import LINKS, ROOT, sample

BILL = ROOT / "storyboards" / "bill_explainer.yaml"


def values(customer_id: str = "IT-000123") -> dict:
    return record_values(parse_record(sample(customer_id)))


def test_each_planned_layer_knows_its_place_in_the_storyboard_even_after_a_skipped_one() -> None:
    board = load_storyboard(BILL)
    timeline = plan(board, values(), LINKS)
    usage = next(s for s in timeline.scenes if s.id == "usage")
    written = board.model.scenes[usage.index].layers
    assert [layer.index for layer in usage.layers] == [0, 1]  # layer 2 (`when: not bill.usage`) is skipped
    assert all(written[layer.index].kind == {"TextSpec": "text", "ChartSpec": "chart"}[type(layer.spec).__name__]
               for layer in usage.layers)
    pay = next(s for s in timeline.scenes if s.id == "pay")
    assert [layer.index for layer in pay.layers] == list(range(len(board.model.scenes[pay.index].layers)))
    assert "index" not in repr(usage.layers[0])  # not part of what a segment's content hash reads


def test_a_text_too_long_for_its_box_is_found_in_the_language_that_overflows() -> None:
    text = BILL.read_text(encoding="utf-8").replace(
        "tagline: Ihre Rechnung, erklärt in 30 Sekunden",
        "tagline: Ihre monatliche Energieabrechnung, ausführlich und verständlich erklärt in nur dreißig Sekunden")
    board = parse_storyboard(text, path="bill.yaml")
    drawer = Drawer(default_fonts_dir())
    german = plan(board, values(), LINKS, locale="de-DE", size=(640, 360))
    italian = plan(board, values(), LINKS, locale="it-IT", size=(640, 360))
    assert overflowing(german, drawer) == [(0, 2)]  # the intro's tagline
    assert overflowing(italian, drawer) == []
    tagline = german.scenes[0].layers[2]
    assert isinstance(tagline.spec, TextSpec) and tagline.spec.text.endswith("dreißig Sekunden")


def test_layer_keys_names_the_translations_each_layer_shows() -> None:
    keys = layer_keys(load_storyboard(BILL))
    assert keys[(0, 2)] == {"tagline"}
    assert keys[(5, 1)] == {"pay_title", "thanks"}  # `t.pay_title if ... else t.thanks`
    usage_chart = keys[(3, 1)]
    assert usage_chart == {"legend_now", "legend_last_year"}
    assert (0, 0) not in keys  # the logo shows no text
