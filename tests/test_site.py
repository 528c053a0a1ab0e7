"""The personal page builder: what every sample customer's page says, links to and keeps private.

No video is rendered here: a render folder is faked from tests/data/site/cta.json
(a real ``cta_document``) and placeholder media files. Helpers at the top are
shared with the other test_site*/test_browser* modules.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from billcast.jobs import amount_due, parse_record, record_values
from billcast.microsite import (Disclosure, SiteError, SiteSettings, build_site, load_catalogs, parse_cta, read_video,
                       write_site)
from billcast.microsite.chart import usage_chart
from billcast.microsite.locales import formatter
from billcast.renderer import load_storyboard

from conftest import DATA, ROOT, sample, sample_lines

SITE_DATA = DATA / "site"
TOKEN = "Tk3n-Tk3n_Tk3nTk3nTk3A"
PAY_URL = "https://pay.lumen.test"
SETTINGS = SiteSettings(pay_url=PAY_URL, public_url="https://bills.lumen.test")
PERSONAL = ("email", "birth_date", "postcode", "account_number", "service_address", "first_name", "last_name",
            "customer_id")
ALL_SAMPLES = [(name, obj["customer_id"]) for name in ("customers.jsonl", "tricky_customers.jsonl")
               for obj in sample_lines(name)]


class Page(HTMLParser):
    """A built page, parsed: every element with its attributes, and the text as a reader gets it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.styles: list[str] = []  # the text of each <style>, which is not page text
        self.in_style = False
        self.feed(html)
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        (self.styles if self.in_style else self.chunks).append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def attribute_values(self) -> list[str]:
        return [value for _, attrs in self.elements for value in attrs.values() if value]

    def urls(self) -> list[str]:
        return [attrs[key] for _, attrs in self.elements for key in ("href", "src", "poster")
                if attrs.get(key)]

    def pay_links(self) -> list[dict[str, str]]:
        out = []
        for url in self.urls():
            parts = urlsplit(url)
            if parts.path.startswith("/pay/"):
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                out.append({"path": parts.path, **query})
        return out


def fake_render(folder: Path, cta: Path = SITE_DATA / "cta.json") -> Path:
    """A render folder with placeholder media and a real cta.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("video.mp4", b"\0\0\0\x18ftypmp42"), ("poster.jpg", b"\xff\xd8\xff\xd9"),
                       ("captions.vtt", b"WEBVTT\n"), ("thumb.gif", b"GIF89a")):
        (folder / name).write_bytes(data)
    shutil.copyfile(cta, folder / "cta.json")
    return folder


def video_fixture():
    return parse_cta(json.loads((SITE_DATA / "cta.json").read_text(encoding="utf-8")), SITE_DATA)


def build_for(customer_id: str, name: str = "customers.jsonl", *, settings: SiteSettings = SETTINGS,
              video=None, **kw):
    record = parse_record(sample(customer_id, name))
    due = kw.pop("amount_due", amount_due(record))
    return build_site(record_values(record), video if video is not None else video_fixture(), token=TOKEN,
                      amount_due=due, settings=settings, **kw)


@pytest.fixture(scope="module")
def pages():
    """Every sample customer's page: (record object, Site, parsed page)."""
    out = {}
    for name, customer_id in ALL_SAMPLES:
        site = build_for(customer_id, name)
        out[customer_id] = (sample(customer_id, name), site, Page(site.html))
    return out


# --- every page -----------------------------------------------------------------------------

@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_page_head_privacy_and_language(pages, customer_id) -> None:
    obj, site, page = pages[customer_id]
    metas = {attrs.get("name") or attrs.get("http-equiv"): attrs.get("content") for attrs in page.all("meta")}
    assert metas["robots"] == "noindex,nofollow"
    assert metas["referrer"] == "no-referrer"
    csp = metas["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "media-src 'self'" in csp
    assert "unsafe-inline" not in csp and "*" not in csp
    [style] = page.styles  # one inline stylesheet, allowed by its hash and nothing else
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in csp
    assert f"form-action {PAY_URL}" in csp
    html = page.all("html")[0]
    arabic = (obj.get("locale") or "").startswith("ar")
    assert html["dir"] == ("rtl" if arabic else "ltr")
    assert html["lang"] == (obj.get("locale") or "en-US")
    assert [s.get("src") for s in page.all("script")] == ["static/site.js"]  # one script, our own
    tracks = page.all("track")
    assert len(tracks) == 1 and tracks[0]["kind"] == "captions" and "default" in tracks[0]
    assert tracks[0]["src"] == "captions.vtt"
    assert page.all("video")[0]["poster"] == "poster.jpg"
    assert all(not url.startswith("//") and "://" not in url for url in page.urls() if "/pay/" not in url
               and "/r/" not in url and "/contact" not in url), "page files must be its own"


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_no_personal_data_in_urls_attributes_or_file_names(pages, customer_id) -> None:
    obj, site, page = pages[customer_id]
    secrets = [str(obj[key]).strip() for key in PERSONAL if obj.get(key) and str(obj[key]).strip()]
    places = page.attribute_values() + list(site.files) + list(site.copies) + page.urls()
    for secret in secrets:
        leaks = [place for place in places if secret in place or secret.lower() in place.lower()]
        assert not leaks, f"personal data in an attribute, URL or file name: {leaks[:3]}"
    amounts = {str(obj["bill"]["total"]), *(str(obj["debt"][k]) for k in ("overdue_total",) if obj.get("debt"))}
    for link in page.pay_links():
        assert set(link) == {"path", "option", "src"}, link  # nothing but the option and the source
        assert link["path"] == f"/pay/{TOKEN}"
        assert link["option"] in ("full", "plan") and link["src"] in ("site", "video")
    for url in page.urls():
        assert not any(amount in url for amount in amounts), url


@pytest.mark.parametrize("customer_id", [cid for _, cid in ALL_SAMPLES])
def test_name_and_labels_show_exactly_as_text(pages, customer_id) -> None:
    obj, _, page = pages[customer_id]
    assert obj["first_name"] in page.text
    for line in obj["bill"].get("lines") or ():
        assert line["label"] in page.text


def test_markup_in_a_name_is_text_not_markup(pages) -> None:
    obj, site, page = pages["TR-000009"]
    assert "<b>Bob</b> & <script>alert(1)</script>" in page.text
    assert not page.all("b")
    assert len(page.all("script")) == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in site.html


def test_amounts_and_dates_are_formatted_for_the_locale(pages) -> None:
    assert "71,47 €" in pages["IT-000123"][2].text
    assert "25 novembre 2026" in pages["IT-000123"][2].text
    assert "119,45 €" in pages["DE-000456"][2].text
    assert "25. November 2026" in pages["DE-000456"][2].text
    assert "$134.40" in pages["US-001234"][2].text
    assert "November 25, 2026" in pages["US-001234"][2].text
    arabic = pages["EG-000790"][2].text
    assert "1,145.80" in arabic and "ج.م." in arabic and "نوفمبر" in arabic
    assert "ادفع على 6 أقساط" in arabic  # CLDR plural "few" for 6 installments


# --- paying ---------------------------------------------------------------------------------

def test_arrears_with_a_plan_has_both_buttons_and_the_video_ctas(pages) -> None:
    _, _, page = pages["IT-000124"]
    links = page.pay_links()
    assert {(link["option"], link["src"]) for link in links} == {("full", "site"), ("plan", "site"),
                                                                 ("plan", "video"), ("full", "video")}
    assert "185,15 €" in page.text and "Importo scaduto" in page.text
    assert "Paga in 3 rate" in page.text
    assert "2026-09-000124" in page.text  # the overdue invoices


def test_a_plan_under_way_takes_the_place_of_pay_soon_and_the_pay_buttons() -> None:
    from billcast.microsite.plan_state import PlanView

    before = build_for("IT-000124").files["index.html"].decode()
    view = PlanView("active", 1, 3, date(2027, 1, 5), Decimal("61.72"), Decimal("123.43"), "EUR")
    during = build_for("IT-000124", plan=view).files["index.html"].decode()
    assert "per evitare ulteriori azioni di recupero" in before and "1 di 3 rate pagate" not in before
    assert "per evitare ulteriori azioni di recupero" not in during and "1 di 3 rate pagate" in during
    assert "option=full&amp;src=site" in before and "option=full&amp;src=site" not in during


def test_a_bill_without_a_plan_offers_no_plan_anywhere(pages) -> None:
    _, _, page = pages["IT-000123"]
    assert {(link["option"], link["src"]) for link in page.pay_links()} == {("full", "site"), ("full", "video")}
    ctas = [attrs for attrs in page.all("a") if "cta" in (attrs.get("class") or "")]
    assert len(ctas) == 1  # the fixture's plan CTA is left out: no plan is on offer


@pytest.mark.parametrize("customer_id, words", [("US-001301", "Your credit"), ("IT-000342", "Il tuo credito")])
def test_a_customer_in_credit_sees_no_pay_button_and_is_told_so(pages, customer_id, words) -> None:
    _, _, page = pages[customer_id]
    assert page.pay_links() == []
    assert not [a for a in page.all("a") if "cta" in (a.get("class") or "")]
    assert words in page.text
    assert "nothing to pay" in page.text.lower() or "niente da pagare" in page.text.lower()


def test_amount_due_comes_from_the_caller() -> None:
    page = Page(build_for("IT-000124", amount_due=Decimal("0")).html)
    assert page.pay_links() == []
    assert "Niente da pagare" in page.text


def test_page_without_video_still_has_everything_else() -> None:
    record = parse_record(sample("IT-000124"))
    site = build_site(record_values(record), None, token=TOKEN, amount_due=amount_due(record), settings=SETTINGS)
    page = Page(site.html)
    assert not page.all("video") and not site.copies
    assert {(link["option"], link["src"]) for link in page.pay_links()} == {("full", "site"), ("plan", "site")}


def test_settings_links_and_brand() -> None:
    settings = SiteSettings(pay_url="https://pay.lumen.test/", public_url="https://bills.lumen.test",
                            contact_url="mailto:help@lumen.test", optout_url="https://bills.lumen.test/stop?t={token}",
                            brand_name="Lumen Test")
    page = Page(build_for("US-001234", settings=settings).html)
    hrefs = [a.get("href") for a in page.all("a")]
    assert "mailto:help@lumen.test" in hrefs and f"https://bills.lumen.test/stop?t={TOKEN}" in hrefs
    assert f"https://pay.lumen.test/pay/{TOKEN}?option=full&src=site" in hrefs
    assert "Lumen Test" in page.text


def test_shared_static_files_and_a_media_folder_for_publishing() -> None:
    settings = SiteSettings(pay_url=PAY_URL, public_url="https://bills.lumen.test", static_url="../../static/ab12/")
    site = build_for("EG-000789", settings=settings, media="m/0123abcd/")
    page = Page(site.html)
    fonts = set(site.files) - {"index.html"}  # the campaign publishes static/ once; the page's fonts are its own
    assert fonts and all(name.startswith("m/0123abcd/fonts/") and name.endswith(".woff2") for name in fonts)
    assert all(f'url("{name}")' in page.styles[0] for name in fonts)
    assert set(site.copies) == {"m/0123abcd/video.mp4", "m/0123abcd/poster.jpg", "m/0123abcd/captions.vtt"}
    assert [s["src"] for s in page.all("script")] == ["../../static/ab12/site.js"]
    assert page.all("link")[-1]["href"] == "../../static/ab12/icon.png"
    assert page.all("video")[0]["poster"] == "m/0123abcd/poster.jpg"
    assert {a["src"] for a in page.all("source") + page.all("track")} == {"m/0123abcd/video.mp4",
                                                                          "m/0123abcd/captions.vtt"}
    default = build_for("EG-000789")
    assert "static/site.js" in default.files and "video.mp4" in default.copies


@pytest.mark.parametrize("customer_id", ["IT-000124", "US-001234", "EG-000790"])
def test_the_paid_page_thanks_and_offers_nothing_to_pay(customer_id) -> None:
    record = parse_record(sample(customer_id))
    page = Page(build_for(customer_id, paid=True).html)
    assert page.pay_links() == [] and not page.all("form")
    card = next(attrs for tag, attrs in page.elements if tag == "section" and "pay-card" in (attrs.get("class") or ""))
    assert "pay-card--paid" in card["class"]
    messages = load_catalogs().messages(record.locale)
    assert messages.plain("paid_label") in page.text
    assert Page(build_for(customer_id).html).pay_links()  # the unpaid page has them


@pytest.mark.parametrize("field, kw", [("static_url", {"static_url": "../static"}),
                                       ("static_url", {"static_url": '"><script>/'})])
def test_a_bad_static_url_is_refused(field, kw) -> None:
    with pytest.raises(SiteError, match=field):
        SiteSettings(pay_url=PAY_URL, public_url="https://bills.lumen.test", **kw)


@pytest.mark.parametrize("media", ["../x/", "m/x", "/abs/", "m/<b>/"])
def test_a_bad_media_folder_is_refused(media) -> None:
    with pytest.raises(SiteError, match="media"):
        build_for("IT-000123", media=media)


@pytest.mark.parametrize("token", ["short", "has space in it but long enough", "maria.rossi@example.org",
                                   "x" * 129])
def test_a_token_that_is_not_a_random_token_is_refused(token) -> None:
    values = record_values(parse_record(sample("IT-000123")))
    with pytest.raises(SiteError, match="token"):
        build_site(values, None, token=token, amount_due=Decimal(1), settings=SETTINGS)


@pytest.mark.parametrize("url", ["pay.lumen.test", "ftp://pay.lumen.test", "https://pay.lumen.test/?a=1"])
def test_bad_settings_are_refused(url) -> None:
    with pytest.raises(SiteError, match="pay_url"):
        SiteSettings(pay_url=url, public_url="https://bills.lumen.test")


# --- language, disclosure, chart ------------------------------------------------------------

def test_disclosure_follows_the_locale_and_falls_back_to_the_default_language() -> None:
    board = load_storyboard(ROOT / "storyboards" / "firm_reminder.yaml")
    disclosure = Disclosure.from_translations(board.model.translations, board.model.default_language)
    assert disclosure is not None
    italian = Page(build_for("IT-000124", settings=SiteSettings(
        pay_url=PAY_URL, public_url="https://bills.lumen.test", disclosure=disclosure)).html)
    assert board.model.translations["it"]["disclosure"] in italian.text
    assert "Note legali" in italian.text
    assert disclosure.for_locale("fr-FR") == board.model.translations["en"]["disclosure"]
    assert disclosure.for_locale("de-AT") == board.model.translations["de"]["disclosure"]
    bill = load_storyboard(ROOT / "storyboards" / "bill_explainer.yaml")
    assert Disclosure.from_translations(bill.model.translations, bill.model.default_language) is None
    assert "Note legali" not in Page(build_for("IT-000124").html).text


def test_a_locale_without_a_catalogue_gets_english_throughout() -> None:
    obj = sample("IT-000123") | {"locale": "fr-FR"}
    record = parse_record(obj)
    site = build_site(record_values(record), None, token=TOKEN, amount_due=amount_due(record), settings=SETTINGS)
    page = Page(site.html)
    assert page.all("html")[0]["lang"] == "en" and "Hello" in page.text and "€71.47" in page.text


def test_shipped_catalogues_have_the_same_keys_and_the_plural_forms_their_language_needs() -> None:
    catalogs = load_catalogs()
    assert set(catalogs.languages) >= {"en", "it", "de", "ar"}
    keys = set(catalogs.languages["en"].entries)
    for language, messages in catalogs.languages.items():
        assert set(messages.entries) == keys, language
        needed = {formatter(language).plural(n) for n in range(1, 1000)}  # what days and installments reach
        for key, entry in messages.entries.items():
            if hasattr(entry, "keys"):
                assert needed <= set(entry) | {"other"} and "other" in entry, (language, key)


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("pay_full: Paga tutto ora\n", ""), "pay_full: is missing"),
    (lambda text: text + "\nnew_key: Nuovo\n", "new_key: is not a key of en.yaml"),
    (lambda text: text.replace("Ciao {name},", "Ciao {nome},"), "greeting: uses {nome}"),
    (lambda text: text.replace("Ciao {name},", "Ciao {name,"), "greeting: has a brace"),
    (lambda text: text.replace('  other: "Paga in {n} rate"\n', ""), "pay_plan: plural forms"),
    (lambda text: text.replace("skip_link: Vai al contenuto", "skip_link: [unclosed"), "not valid YAML"),
])
def test_a_broken_catalogue_is_refused_naming_file_and_key(tmp_path, edit, message) -> None:
    folder = tmp_path / "catalogs"
    shutil.copytree(ROOT / "microsite" / "catalogs", folder)
    path = folder / "it.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(SiteError) as caught:
        load_catalogs(folder)
    assert "it.yaml" in str(caught.value) and message in str(caught.value)


def test_an_edited_catalogue_changes_the_page_and_its_markup_stays_text(tmp_path) -> None:
    folder = tmp_path / "catalogs"
    shutil.copytree(ROOT / "microsite" / "catalogs", folder)
    path = folder / "it.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("pay_full: Paga tutto ora", "pay_full: Paga <subito>"),
                    encoding="utf-8")
    page = Page(build_for("IT-000123", catalogs=load_catalogs(folder)).html)
    assert "Paga <subito>" in page.text and not page.all("subito")


def test_usage_chart_runs_right_to_left_on_rtl_pages_with_a_table_of_the_same_data() -> None:
    usage = record_values(parse_record(sample("EG-000790")))["bill"]["usage"]
    ltr = usage_chart(usage, formatter("en-US"), rtl=False, unit="kWh")
    rtl = usage_chart(usage, formatter("ar-EG"), rtl=True, unit="kWh")
    assert float(ltr.bars[-1].x) > float(ltr.bars[0].x)
    assert float(rtl.bars[-1].x) < float(rtl.bars[0].x)
    assert [bar.role for bar in ltr.bars].count("current") == 1 and ltr.has_last_year
    assert len(ltr.rows) == len(usage) and ltr.rows[-1].quantity == "395.6"
    page = Page(build_for("EG-000790").html)
    assert "أكتوبر 2026" in page.text  # the table's months, for screen readers
    assert usage_chart([], formatter("en-US"), rtl=False) is None
    assert "Your usage history will appear here" in Page(build_for("TR-000001", "tricky_customers.jsonl").html).text


# --- the description and writing it -----------------------------------------------------------

def test_build_is_pure_and_its_description_immutable() -> None:
    values = record_values(parse_record(sample("IT-000124")))
    before = copy.deepcopy(values)
    first = build_site(values, video_fixture(), token=TOKEN, amount_due=Decimal("185.15"), settings=SETTINGS)
    second = build_site(values, video_fixture(), token=TOKEN, amount_due=Decimal("185.15"), settings=SETTINGS)
    assert values == before and dict(first.files) == dict(second.files)
    with pytest.raises(TypeError):
        first.files["index.html"] = b""  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        first.files = {}  # type: ignore[misc]
    assert set(first.copies) == {"video.mp4", "poster.jpg", "captions.vtt"}


def test_arabic_fonts_ship_only_with_pages_that_have_arabic_text(pages) -> None:
    def faces(site) -> set[str]:
        return {name.removeprefix("fonts/").rsplit("-", 1)[0] for name in site.files if name.endswith(".woff2")}

    assert faces(pages["EG-000790"][1]) == {"NotoSans-Regular", "NotoSans-Bold", "NotoSansArabic-Regular",
                                            "NotoSansArabic-Bold"}
    assert faces(pages["IT-000123"][1]) == {"NotoSans-Regular", "NotoSans-Bold"}
    assert "static/fonts/OFL.txt" in pages["IT-000123"][1].files
    record = parse_record(sample("US-001234") | {"first_name": "ليلى"})
    site = build_site(record_values(record), None, token=TOKEN, amount_due=amount_due(record), settings=SETTINGS)
    assert "NotoSansArabic-Bold" in faces(site) and 'dir="ltr"' in site.html


def test_write_site_writes_everything_and_replaces_the_old_folder_whole(tmp_path) -> None:
    render = fake_render(tmp_path / "render")
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.txt").write_text("old", encoding="utf-8")
    site = build_for("IT-000124", video=read_video(render))
    write_site(site, out)
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert names == set(site.files) | set(site.copies)
    assert (out / "video.mp4").read_bytes() == (render / "video.mp4").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_write_site_leaves_nothing_when_a_render_file_vanishes(tmp_path) -> None:
    render = fake_render(tmp_path / "render")
    site = build_for("IT-000124", video=read_video(render))
    out = tmp_path / "site"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    (render / "poster.jpg").unlink()
    with pytest.raises(SiteError, match="poster.jpg"):
        write_site(site, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- reading a render's outputs ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["video.mp4", "poster.jpg", "captions.vtt", "cta.json"])
def test_a_missing_render_file_is_named(tmp_path, name) -> None:
    render = fake_render(tmp_path / "render")
    (render / name).unlink()
    with pytest.raises(SiteError) as caught:
        read_video(render)
    assert str(render / name) in str(caught.value) and "missing" in str(caught.value)


def test_an_empty_render_file_and_a_missing_folder_are_named(tmp_path) -> None:
    render = fake_render(tmp_path / "render")
    (render / "video.mp4").write_bytes(b"")
    with pytest.raises(SiteError, match="video.mp4: is empty"):
        read_video(render)
    with pytest.raises(SiteError, match="nowhere: is not a folder"):
        read_video(tmp_path / "nowhere")


@pytest.mark.parametrize("text, message", [
    ("{not json", "cta.json: is not valid JSON"),
    ("[]", "cta.json: must be a JSON object"),
    ('{"version": 2, "duration": 20, "size": [1280, 720], "ctas": []}', "cta.json: version: version 2"),
    ('{"version": 1, "size": [1280, 720], "ctas": []}', "cta.json: duration: is missing"),
    ('{"version": 1, "duration": 20, "size": [1280], "ctas": []}', "cta.json: size: must be [width, height]"),
    ('{"version": 1, "duration": 20, "size": [16, 9], "ctas": [{"start": 5, "end": 4, "label": "Pay",'
     ' "action": "pay"}]}', "ctas[0].end: must be between 5 and 20.5, got 4"),
    ('{"version": 1, "duration": 20, "size": [16, 9], "ctas": [{"start": 1, "end": 4, "label": "Pay",'
     ' "action": "buy"}]}', 'ctas[0].action: must be one of pay, plan, link, got "buy"'),
    ('{"version": 1, "duration": 20, "size": [16, 9], "ctas": [{"start": 1, "end": 4, "label": "Pay",'
     ' "action": "pay", "box": [0, 0, 2, 0.1]}]}', "ctas[0].box[2]: must be between 0 and 1.0001, got 2"),
])
def test_a_corrupt_cta_json_is_named_with_its_field(tmp_path, text, message) -> None:
    render = fake_render(tmp_path / "render")
    (render / "cta.json").write_text(text, encoding="utf-8")
    with pytest.raises(SiteError) as caught:
        read_video(render)
    assert message in str(caught.value)
    assert str(render / "cta.json") in str(caught.value)


def test_the_builder_imports_nothing_of_jobs_or_flask_and_does_no_work_at_import() -> None:
    code = ("import sys, billcast.microsite, billcast.microsite.build as b, billcast.microsite.catalog as c\n"
            "print(sorted(m for m in sys.modules if m.startswith(('billcast.jobs', 'billcast.service', 'flask'))),"
            " b._template.cache_info().currsize, c.load_catalogs.cache_info().currsize)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.split() == ["[]", "0", "0"]
