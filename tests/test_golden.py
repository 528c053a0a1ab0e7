"""Golden frames: tiny renders of each layer kind and animation, compared within a tolerance.

After an intended visual change: ``make golden`` (pytest --regen-golden) rewrites them;
look at the new PNGs before committing. A failing comparison writes a diff image
under tests/golden/_diff/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from billcast.renderer import load_storyboard, plan, preview

from conftest import DATA, HERE, LINKS

GOLDEN = HERE / "golden"
DIFFS = GOLDEN / "_diff"
VALUES = {
    "first_name": "Maria", "locale": "en-US",
    "usage": [{"period": f"{2025 + (m // 12)}-{m % 12 + 1:02d}", "quantity": q}
              for m, q in zip(range(9, 22), (190, 210, 260, 280, 250, 220, 180, 160, 170, 230, 240, 190, 205))],
    "lines": [{"label": "Energy", "amount": "80.10"}, {"label": "Network charges", "amount": "25.00"},
              {"label": "Taxes", "amount": "18.35"}],
}
CASES = {  # name: (seconds, locale)
    "text": (0.5, "en-US"), "image": (1.5, "en-US"), "rect": (2.5, "en-US"), "chart": (3.5, "en-US"),
    "table": (4.5, "en-US"), "qr": (5.5, "en-US"),
    "fade_in_before": (6.2, "en-US"), "fade_in_mid": (7.0, "en-US"), "fade_in_after": (7.8, "en-US"),
    "fade_out_mid": (9.0, "en-US"), "fade_out_after": (9.8, "en-US"),
    "slide_in_start": (10.4, "en-US"), "slide_in_mid": (11.0, "en-US"), "slide_in_end": (11.8, "en-US"),
    "arabic_greeting": (0.5, "ar-EG"), "rtl_chart": (3.5, "ar-EG"),
}
MEAN_TOLERANCE = 1.5  # mean absolute difference per channel, 0-255
PIXEL_TOLERANCE = 64  # no pixel may differ by more than this on any channel ...
OUTLIERS = 0.01  # ... except this share of pixels (antialiasing may move by one pixel)


def frame(name: str) -> Image.Image:
    seconds, locale = CASES[name]
    board = load_storyboard(DATA / "golden.yaml")
    values = dict(VALUES, locale=locale, first_name="محمد" if locale == "ar-EG" else "Maria")
    return preview(plan(board, values, LINKS, size=(160, 90)), seconds)


def compare(name: str, got: Image.Image, regen: bool) -> None:
    path = GOLDEN / f"{name}.png"
    if regen or not path.exists():
        if not regen:
            pytest.fail(f"no golden frame {path.name}; run `make golden` and look at it before committing")
        got.save(path)
        return
    want = Image.open(path).convert("RGB")
    assert got.size == want.size
    diff = np.abs(np.asarray(got, np.int16) - np.asarray(want, np.int16))
    mean = diff.mean()
    outliers = (diff.max(axis=2) > PIXEL_TOLERANCE).mean()
    if mean > MEAN_TOLERANCE or outliers > OUTLIERS:
        DIFFS.mkdir(exist_ok=True)
        got.save(DIFFS / f"{name}.got.png")
        ImageChops.difference(got, want).point(lambda v: min(v * 4, 255)).save(DIFFS / f"{name}.diff.png")
        pytest.fail(f"{name}: mean difference {mean:.2f}, {outliers:.2%} of pixels off by > {PIXEL_TOLERANCE}; "
                    f"see {DIFFS}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_frame(name: str, regen_golden: bool) -> None:
    compare(name, frame(name), regen_golden)


def test_animations_actually_move() -> None:
    """The golden frames of an animation differ from each other, so the comparison means something."""
    for a, b in (("fade_in_before", "fade_in_mid"), ("fade_in_mid", "fade_in_after"),
                 ("slide_in_start", "slide_in_mid"), ("slide_in_mid", "slide_in_end"),
                 ("fade_out_mid", "fade_out_after")):
        diff = np.abs(np.asarray(frame(a), np.int16) - np.asarray(frame(b), np.int16)).mean()
        assert diff > 5, (a, b, diff)


def test_the_comparison_fails_on_a_changed_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(__import__(__name__), "DIFFS", tmp_path)
    changed = frame("text").copy()
    changed.paste((255, 0, 0), (0, 0, 80, 45))
    with pytest.raises(pytest.fail.Exception):
        compare("text", changed, regen=False)
