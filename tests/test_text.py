"""Text: every name the records contract allows is drawn as given, in the right fonts and order."""

from __future__ import annotations

import numpy as np
import pytest

from billcast.jobs import parse_record, record_values
from billcast.renderer import Drawer, default_fonts_dir, load_storyboard, plan
from billcast.renderer.text import EMOJI_FILE, FontBook, fit, wrap
from billcast.renderer.timeline import TextSpec

from conftest import LINKS, STORYBOARDS, sample_lines

BOOK = FontBook(default_fonts_dir())
TRICKY = sample_lines("tricky_customers.jsonl")


def test_runs_pick_a_font_that_has_each_character() -> None:
    assert [(r.font, r.text) for r in BOOK.runs("Zoë 😀!", "regular")] == [
        ("NotoSans-Regular.ttf", "Zoë "), (EMOJI_FILE, "😀"), ("NotoSans-Regular.ttf", "!")]
    assert [(r.font, r.text) for r in BOOK.runs("Layla ليلى", "bold")] == [
        ("NotoSans-Bold.ttf", "Layla "), ("NotoSansArabic-Bold.ttf", "ليلى")]


def test_emoji_sequences_stay_whole() -> None:
    family = "👩\u200d👩\u200d👧"
    runs = BOOK.runs(f"Ünal {family}", "regular")
    assert runs[-1].font == EMOJI_FILE and runs[-1].text == family


def test_runs_are_ordered_for_the_paragraph_direction() -> None:
    rtl = [(run.text, d) for run, d in BOOK.visual_runs("مرحبًا Layla 😀،", "regular", "rtl")]
    assert rtl == [("،", "rtl"), ("😀", "rtl"), ("Layla ", "ltr"), ("مرحبًا ", "rtl")]
    ltr = [(run.text, d) for run, d in BOOK.visual_runs("Hi ليلى and 😀", "regular", "ltr")]
    assert ltr == [("Hi ", "ltr"), ("ليلى ", "rtl"), ("and ", "ltr"), ("😀", "ltr")]


def test_wrap_keeps_newlines_and_breaks_long_words() -> None:
    assert wrap(BOOK, "one\ntwo", "regular", 20, 1000, "ltr") == ["one", "two"]
    lines = wrap(BOOK, "x" * 200, "regular", 20, 300, "ltr")
    assert len(lines) > 1 and "".join(lines) == "x" * 200
    assert all(BOOK.width(line, "regular", 20) <= 300 for line in lines)


def test_fit_shrinks_then_truncates_only_at_the_minimum() -> None:
    text = "word " * 12
    big = fit(BOOK, text, "regular", 40, 40, 400, 60, 1, 1.2, "ltr")
    assert big.truncated and big.lines[-1].endswith("…")
    shrunk = fit(BOOK, text, "regular", 40, 10, 400, 60, 1, 1.2, "ltr")
    assert not shrunk.truncated and shrunk.size < 40 and len(shrunk.lines) == 1


def greeting_layers(timeline, name: str):
    for scene in timeline.scenes:
        for layer in scene.layers:
            if isinstance(layer.spec, TextSpec) and name in layer.spec.text:
                yield layer


@pytest.mark.parametrize("path", STORYBOARDS, ids=lambda p: p.name)
def test_every_allowed_name_is_drawn_whole(path) -> None:
    board = load_storyboard(path)
    drawer = Drawer(default_fonts_dir())
    checked = 0
    for obj in TRICKY:
        if board.model.purpose != "bill":
            obj = dict(obj, debt=obj.get("debt") or {"overdue_total": "10.00", "days_past_due": 40})
        values = record_values(parse_record(obj))
        timeline = plan(board, values, LINKS)
        for layer in greeting_layers(timeline, obj["first_name"]):
            sprite = drawer.sprite(layer)
            assert not sprite.truncated, (path.name, obj["customer_id"], layer.spec.text)
            assert np.asarray(sprite.image)[..., 3].max() > 0
            checked += 1
    assert checked >= len(TRICKY)


def test_emoji_are_drawn_in_colour() -> None:
    board = load_storyboard(STORYBOARDS[0])
    obj = next(o for o in TRICKY if "😀" in o["first_name"])
    layer = next(greeting_layers(plan(board, record_values(parse_record(obj)), LINKS), obj["first_name"]))
    pixels = np.asarray(Drawer(default_fonts_dir()).sprite(layer).image).reshape(-1, 4)
    opaque = pixels[pixels[:, 3] > 200]
    saturated = (opaque[:, :3].max(axis=1).astype(int) - opaque[:, :3].min(axis=1)) > 80
    assert saturated.sum() > 50  # the yellow face, not white text
