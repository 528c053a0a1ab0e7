"""The page's QR encoder: module for module what the ``qrcode`` library makes, and readable by a real reader."""

from __future__ import annotations

import re

import numpy as np
import pytest
import qrcode
import zxingcpp
from PIL import Image
from qrcode.util import MODE_8BIT_BYTE, QRData, lost_point

from billcast.microsite import qr_matrix
from billcast.microsite.qr import QUIET, qr_path

# Byte lengths that land on every version 1-20 at level M (and a few boundaries).
LENGTHS = [1, 14, 15, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666]


def text_of(length: int, seed: int = 0) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/?=&:."
    rng = np.random.default_rng(seed + length)
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), length))


def reference(data: str, mask: int | None) -> np.ndarray:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=mask)
    code.add_data(QRData(data.encode("utf-8"), mode=MODE_8BIT_BYTE))
    code.make(fit=True)
    return np.array(code.get_matrix(), bool)


def decode(matrix: np.ndarray) -> list[str]:
    light = np.pad(~matrix, QUIET, constant_values=True).astype(np.uint8) * 255
    image = Image.fromarray(light).resize((light.shape[1] * 6, light.shape[0] * 6), Image.Resampling.NEAREST)
    return [result.text for result in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("length", LENGTHS)
def test_every_mask_matches_the_qrcode_library(length) -> None:
    data = text_of(length)
    for mask in range(8):
        ours, theirs = qr_matrix(data, mask=mask), reference(data, mask)
        assert ours.shape == theirs.shape and (ours == theirs).all(), (length, mask)


@pytest.mark.parametrize("length", LENGTHS[::3])
def test_the_mask_chosen_has_the_lowest_penalty_by_the_librarys_own_scoring(length) -> None:
    # qrcode scores masks with the format information left blank; the standard scores the
    # finished symbol, as this encoder does. Both use the same four rules (qrcode.util.lost_point).
    data = text_of(length, seed=7)
    candidates = [qr_matrix(data, mask=mask) for mask in range(8)]
    scores = [lost_point(c.tolist()) for c in candidates]
    chosen = qr_matrix(data)
    assert any((chosen == c).all() and score == min(scores) for c, score in zip(candidates, scores, strict=True))


@pytest.mark.parametrize("data", [
    "https://pay.lumen.test/pay/Tk3n-Tk3n_Tk3nTk3nTk3A?option=full&src=qr",
    "https://bills.lumen.test/r/Tk3n-Tk3n_Tk3nTk3nTk3A/",
    "https://pay.lumen-energia.example.com/pay/" + "A" * 128 + "?option=plan&src=qr",
    "ünïcödé ✓ " + text_of(40),
])
def test_a_reader_decodes_it(data) -> None:
    assert decode(qr_matrix(data)) == [data]


def test_data_past_version_20_falls_back_to_the_library_and_still_decodes() -> None:
    data = text_of(900)
    matrix = qr_matrix(data)
    assert matrix.shape[0] > 4 * 20 + 17
    assert decode(matrix) == [data]


def test_the_svg_path_draws_exactly_the_dark_modules() -> None:
    matrix = qr_matrix("https://pay.lumen.test/pay/Tk3n-Tk3n_Tk3nTk3nTk3A?option=full&src=qr")
    drawn = np.zeros((matrix.shape[0] + 2 * QUIET,) * 2, bool)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", qr_path(matrix)):
        row, start = int(y), int(x)
        assert not drawn[row, start:start + int(width)].any(), "runs overlap"
        drawn[row, start:start + int(width)] = True
    assert (drawn[QUIET:-QUIET, QUIET:-QUIET] == matrix).all()
    assert not drawn[:QUIET].any() and not drawn[:, :QUIET].any()
