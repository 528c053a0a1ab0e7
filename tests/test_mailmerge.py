"""What a campaign hands the billing team: the email snippet, its play-marked picture and the QR code."""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from billcast.jobs.mailmerge import QR_MODULE_PX, email_gif, email_html, qr_png, qr_target

TOKEN = "Tk3n-Tk3n_Tk3nTk3nTk3A"
LINK = f"https://bills.lumen.test/r/{TOKEN}/"
THUMB = f"https://bills.lumen.test/r/{TOKEN}/thumb.gif"
OPTOUT = f"https://pay.lumen.test/r/{TOKEN}/optout"


class Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


@pytest.mark.parametrize("locale, words, direction, stop", [
    ("it-IT", "Guarda il video", "ltr", "Non voglio più ricevere questi messaggi"),
    ("de-DE", "Video", "ltr", "Keine weiteren Nachrichten erhalten"),
    ("ar-EG", "شاهد الفيديو", "rtl", "إيقاف تلقي هذه الرسائل"),
    ("en-US", "Watch your personal video", "ltr", "Stop receiving these messages"),
    ("pt-BR", "Watch your personal video", "ltr", "Stop receiving these messages")])
def test_email_snippet_links_the_page_in_the_recipients_language(locale, words, direction, stop) -> None:
    page = Tags(email_html(locale=locale, brand=None, link=LINK, thumb_url=THUMB, size=(480, 270), optout=OPTOUT))
    table = next(attrs for tag, attrs in page.tags if tag == "table")
    assert table["dir"] == direction
    assert [attrs["href"] for tag, attrs in page.tags if tag == "a"] == [LINK, LINK, LINK, OPTOUT]
    assert page.text[-1] == stop
    img = next(attrs for tag, attrs in page.tags if tag == "img")
    assert img["src"] == THUMB and img["width"] == "480" and words in img["alt"]
    assert any(words in text for text in page.text)


def test_a_brand_with_markup_stays_text() -> None:
    html = email_html(locale="en-US", brand='Lumen <b>"&', link=LINK, thumb_url=THUMB, size=(480, 270),
                      optout=OPTOUT)
    assert "<b>" not in html and "Lumen &lt;b&gt;" in html


@pytest.mark.parametrize("due, expected", [(Decimal("12.50"), f"https://pay.lumen.test/pay/{TOKEN}?option=full&src=qr"),
                                           (Decimal("0"), LINK), (Decimal("-3"), LINK)])
def test_qr_png_reads_back_as_the_pay_link_or_the_page(tmp_path, due, expected) -> None:
    target = qr_target("https://bills.lumen.test", "https://pay.lumen.test", TOKEN, due)
    assert target == expected
    qr_png(target, tmp_path / "qr.png")
    image = Image.open(tmp_path / "qr.png")
    assert image.mode == "1" and image.size[0] == image.size[1] and image.size[0] % QR_MODULE_PX == 0
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [expected]


def test_email_gif_keeps_the_frames_and_draws_a_play_mark(tmp_path) -> None:
    frames = [Image.new("RGB", (320, 180), (40 + 20 * i, 120, 90)) for i in range(5)]
    frames[0].save(tmp_path / "thumb.gif", save_all=True, append_images=frames[1:], duration=120, loop=0)
    size = email_gif(tmp_path / "thumb.gif", tmp_path / "email.gif")
    assert size == (320, 180)
    email_gif(tmp_path / "thumb.gif", tmp_path / "rtl.gif", rtl=True)
    with Image.open(tmp_path / "rtl.gif") as gif:
        pixels = np.asarray(gif.convert("RGB")).astype(int)
        r = round(180 * 0.12)
        assert pixels[180 - r - r // 2, 320 - r // 2 - r + 2].min() > 230  # lower right for right-to-left
    with Image.open(tmp_path / "email.gif") as gif:
        assert gif.n_frames == 5 and gif.info["loop"] == 0
        for i in range(gif.n_frames):
            gif.seek(i)
            pixels = np.asarray(gif.convert("RGB")).astype(int)
            r = round(180 * 0.12)
            assert pixels[180 - r - r // 2, r // 2 + r + 2].min() > 230  # the white triangle, lower left
            assert abs(pixels[90, 160] - np.array([40 + 20 * i, 120, 90])).max() <= 8  # the middle is untouched
