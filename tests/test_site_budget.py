"""What a phone downloads before the video starts: at most 250 KB for every sample customer, in every language.

Each sample record gets the storyboard the sample campaign (examples/campaign.toml)
picks for it, planned at the campaign's 1280x720. No video is encoded (the page
loads none until it is played): the render folder holds the real poster (the
poster frame drawn at 720p and encoded as ``render`` encodes it), the real
captions and ``cta.json``, and a placeholder video. The page is built as
``billcast site`` builds it, and every file it names is counted, except the video.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from billcast.jobs import amount_due, load_campaign, parse_record, record_values
from billcast.jobs.campaign import choose
from billcast.microsite import Disclosure, SiteSettings, build_site, read_video
from billcast.renderer import cta_document, load_storyboard, plan, preview, webvtt
from billcast.renderer.render import POSTER_JPEG

from conftest import ROOT, sample
from test_site import ALL_SAMPLES, Page

BUDGET = 250_000  # bytes before the video starts: page, stylesheet, script, images, fonts, poster, captions
BASE = "https://bills.lumen.test"
TOKEN = "BudgetT0ken_0123456789"


def fake_render(folder: Path, timeline) -> Path:
    """A render folder whose poster, captions and cta.json are the real ones; the video is a placeholder."""
    folder.mkdir(parents=True)
    preview(timeline, timeline.poster_time).save(folder / "poster.jpg", "JPEG", **POSTER_JPEG)
    (folder / "captions.vtt").write_text(webvtt(timeline), encoding="utf-8")
    (folder / "cta.json").write_text(json.dumps(cta_document(timeline)), encoding="utf-8")
    (folder / "video.mp4").write_bytes(b"\0\0\0\x18ftypmp42")
    return folder


def fetched(site, html: str) -> set[str]:
    """The page's own files a browser fetches before anyone presses play (the video is not)."""
    page = Page(html)
    refs = {attrs.get(key) for tag, attrs in page.elements if tag != "source" for key in ("src", "href", "poster")}
    refs |= set(re.findall(r'url\("([^"]+)"\)', "".join(page.styles)))
    return {ref for ref in refs if ref and not urlsplit(ref).scheme and not ref.startswith("#")}


def page_bytes(site, names: set[str]) -> int:
    sizes = {**{name: len(data) for name, data in site.files.items()},
             **{name: path.stat().st_size for name, path in site.copies.items()}}
    missing = names - set(sizes)
    assert not missing, f"the page names files it does not have: {missing}"
    return len(site.files["index.html"]) + sum(sizes[name] for name in names)


@pytest.fixture(scope="module")
def campaign():
    return load_campaign(ROOT / "examples" / "campaign.toml")


@pytest.mark.parametrize("name, customer_id", ALL_SAMPLES, ids=[cid for _, cid in ALL_SAMPLES])
def test_a_page_weighs_at_most_250_kb_before_its_video_starts(tmp_path, campaign, name, customer_id) -> None:
    record = parse_record(sample(customer_id, name))
    values = record_values(record)
    board = load_storyboard(choose(campaign, values, customer_id).storyboard)
    timeline = plan(board, values, {"page": f"{BASE}/r/{TOKEN}/", "pay": f"{BASE}/pay/{TOKEN}?option=full&src=qr",
                                    "plan": f"{BASE}/pay/{TOKEN}?option=plan&src=qr"}, size=campaign.size)
    assert timeline.size == (1280, 720)
    settings = SiteSettings(pay_url=BASE, public_url=BASE, disclosure=Disclosure.from_translations(
        board.model.translations, board.model.default_language))
    site = build_site(values, read_video(fake_render(tmp_path / "render", timeline)), token=TOKEN,
                      amount_due=amount_due(record), settings=settings)
    names = fetched(site, site.html)
    assert {"poster.jpg", "captions.vtt", "static/site.js"} <= names and any(n.endswith(".woff2") for n in names)
    assert "video.mp4" not in names
    total = page_bytes(site, names)
    assert total <= BUDGET, f"{customer_id}: {total} bytes before the video starts"
