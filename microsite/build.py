"""One recipient's page: record values, render outputs, token and settings in; a description of files out.

``build_site`` is pure: it reads nothing but the package's own templates,
catalogues, static files and fonts (once per process) and returns a :class:`Site`,
an immutable mapping of file names to bytes plus the render files to copy.
``write.write_site`` is the one function that puts it on disk.

The body is rendered first; the page's fonts are cut to its text (``fonts.py``),
and the document around it carries the stylesheet inline with their
``@font-face`` rules, allowed by its hash in the Content-Security-Policy.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template
from markupsafe import Markup

from .assets import static_files, stylesheet
from .catalog import Catalogs, Messages, load_catalogs
from .charset import language_characters, page_characters
from .errors import SiteError
from .chart import usage_chart
from .fonts import WebFont, font_faces, web_fonts
from .links import check_token, page_link, pay_link
from .locales import Formatter, bcp47, direction, formatter, parse_locale
from .plan_state import PlanView, plan_context
from .qr import QUIET, qr_matrix, qr_path
from .settings import SiteSettings
from .video import COPIED, Video

PAGE = "index.html"
FONTS = "fonts/"  # the page's font subsets, in its media folder
_MEDIA = re.compile(r"(?:[A-Za-z0-9_-]+/)+")


@dataclass(frozen=True)
class Site:
    """What a page folder holds: ``files`` written as given, ``copies`` copied from the render folder."""

    files: Mapping[str, bytes]
    copies: Mapping[str, Path]

    @property
    def html(self) -> str:
        return self.files[PAGE].decode("utf-8")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader(__package__, "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, auto_reload=False)


@lru_cache(maxsize=2)
def _template(name: str) -> Template:
    return _env().get_template(name)


@lru_cache(maxsize=1)
def _pay_box() -> Template:
    return _env().from_string('{% from "parts.html" import pay_box %}{{ pay_box(t, pay, plan) }}')


def plan_block(view: PlanView, *, lang: str, pay_url: str, token: str, catalogs: Catalogs | None = None) -> str:
    """The pay card's inside for a plan in ``view``'s state, in the page's language (``lang``, as in
    ``<html lang>``): what replaces the part between the page's ``pay-state`` markers when the plan moves on."""
    messages, fmt, _, _ = page_language(lang, catalogs)

    def t(key: str, count: int | None = None, **kw: Any) -> Markup:
        return messages.text(key, count, fmt, **kw)

    return _pay_box().render(t=t, pay=None, plan=plan_context(view, t, fmt, pay_url, check_token(token)))


def _date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _language(values: Mapping[str, Any], settings: SiteSettings, catalogs: Catalogs,
              locale: str | None) -> tuple[Messages, Formatter, str, str]:
    """The catalogue, the formatter and ``lang``/``dir`` of the page, all in one language."""
    return page_language(locale or values.get("locale") or settings.default_locale, catalogs)


def page_language(tag: str, catalogs: Catalogs | None = None) -> tuple[Messages, Formatter, str, str]:
    """For a locale tag: the catalogue, the formatter and ``lang``/``dir``, all in one language (the
    catalogue's, where there is none for the tag's language). The service's own pages use it too."""
    messages = (catalogs or load_catalogs()).messages(tag)
    if parse_locale(tag).language != parse_locale(messages.language).language:
        tag = messages.language  # no catalogue for this language: format in the catalogue's language too
    babel = parse_locale(tag)
    return messages, formatter(tag), bcp47(babel), direction(babel)


Text = Callable[..., Markup]


def _hero(values: Mapping[str, Any], due: Decimal, t: Text, fmt: Formatter) -> dict[str, Any]:
    """The amount card: what the customer owes (or is owed), and by when."""
    bill, debt, currency = values["bill"], values.get("debt"), values["currency"]
    if due > 0 and debt and Decimal(debt["overdue_total"]) > 0:
        deadline = debt.get("deadline")
        notes = [t("days_past_due", int(debt["days_past_due"])),
                 t("pay_by_deadline", date=fmt.date(_date(deadline))) if deadline else t("pay_soon")]
        return {"kind": "debt", "label": t("overdue_label"), "amount": fmt.money(due, currency), "notes": notes}
    if due > 0:
        return {"kind": "bill", "label": t("due_label"), "amount": fmt.money(due, currency),
                "notes": [t("due_by", date=fmt.date(_date(bill["due_date"])))]}
    total = Decimal(bill["total"])
    if total < 0:
        return {"kind": "credit", "label": t("credit_label"), "amount": fmt.money(-total, currency),
                "notes": [t("credit_note")]}
    return {"kind": "zero", "label": t("nothing_label"), "amount": "", "notes": [t("nothing_note")]}


def _plan(values: Mapping[str, Any], due: Decimal) -> Mapping[str, Any] | None:
    debt = values.get("debt")
    return debt.get("plan_offer") if debt and due > 0 else None


def _pay(values: Mapping[str, Any], due: Decimal, token: str, settings: SiteSettings, t: Text,
         fmt: Formatter) -> dict[str, Any] | None:
    """The pay buttons (links carry the token, the option and the source, never the amount)."""
    if due <= 0:
        return None
    plan = _plan(values, due)
    out: dict[str, Any] = {"full": pay_link(settings.pay_url, token, "full", "site"), "plan": None,
                           "plan_label": "", "plan_note": ""}
    if plan:
        count, first = int(plan["installments"]), fmt.date(_date(plan["first_due_date"]))
        out.update(plan=pay_link(settings.pay_url, token, "plan", "site"), plan_label=t("pay_plan", count),
                   plan_note=t("plan_choice", count, date=first))
    return out


def _arrears(values: Mapping[str, Any], due: Decimal, t: Text, fmt: Formatter) -> dict[str, Any] | None:
    debt, currency = values.get("debt"), values["currency"]
    if not debt or Decimal(debt["overdue_total"]) <= 0:
        return None
    invoices = [{"number": item.get("number") or t("no_number"), "due": fmt.date(_date(item["due_date"]), "medium"),
                 "amount": fmt.money(Decimal(item["amount"]), currency)} for item in debt.get("invoices") or ()]
    plan = _plan(values, due)
    plan_text = t("plan_text", int(plan["installments"]), date=fmt.date(_date(plan["first_due_date"]))) \
        if plan else ""
    return {"days": t("days_past_due", int(debt["days_past_due"])), "invoices": invoices,
            "total": fmt.money(Decimal(debt["overdue_total"]), currency), "plan": plan_text}


def _overlay_target(action: str, link: str | None, links: Mapping[str, str | None]) -> str | None:
    return links.get(link or "") if action == "link" else links.get(action)


def _video(video: Video | None, due: Decimal, plan: bool, token: str, settings: SiteSettings) -> dict | None:
    """The video and its calls to action; a pay or plan CTA the customer cannot use is left out."""
    if video is None:
        return None
    links = {"pay": pay_link(settings.pay_url, token, "full", "video") if due > 0 else None,
             "plan": pay_link(settings.pay_url, token, "plan", "video") if plan else None,
             "page": page_link(settings.public_url, token), "contact": settings.contact_for(token),
             "optout": settings.optout_for(token)}
    overlays = []
    for cta in video.ctas:
        href = _overlay_target(cta.action, cta.link, links)
        if href:
            box = " ".join(f"{v:.4f}" for v in cta.box) if cta.box else ""
            overlays.append({"href": href, "label": cta.label, "start": f"{cta.start:.3f}", "end": f"{cta.end:.3f}",
                             "box": box})
    seconds = round(video.duration)
    return {"width": video.width, "height": video.height, "overlays": overlays, "duration": f"{video.duration:g}",
            "length": f"{seconds // 60}:{seconds % 60:02d}"}


def _bill(values: Mapping[str, Any], t: Text, fmt: Formatter) -> dict[str, Any]:
    bill, currency = values["bill"], values["currency"]
    return {"total": fmt.money(Decimal(bill["total"]), currency), "due": fmt.date(_date(bill["due_date"])),
            "issued": fmt.date(_date(bill["issue_date"])), "number": bill.get("number") or "",
            "period": fmt.interval(_date(bill["period_start"]), _date(bill["period_end"])),
            "lines": [{"label": line["label"], "amount": fmt.money(Decimal(line["amount"]), currency)}
                      for line in bill.get("lines") or ()]}


def _qr(due: Decimal, token: str, settings: SiteSettings, t: Text) -> dict[str, Any]:
    """A QR code to the payment page (``src=qr``), or to this page when there is nothing to pay."""
    if due > 0:
        data, text = pay_link(settings.pay_url, token, "full", "qr"), t("qr_pay_text")
    else:
        data, text = page_link(settings.public_url, token), t("qr_page_text")
    matrix = qr_matrix(data)
    return {"path": qr_path(matrix), "size": matrix.shape[0] + 2 * QUIET, "text": text}


def _context(values: Mapping[str, Any], video: Video | None, token: str, due: Decimal, settings: SiteSettings,
             language: tuple[Messages, Formatter, str, str], media: str, paid: bool,
             plan: PlanView | None = None) -> dict[str, Any]:
    messages, fmt, lang, page_dir = language

    def t(key: str, count: int | None = None, **kw: Any) -> Markup:
        return messages.text(key, count, fmt, **kw)

    hero = _hero(values, due, t, fmt)
    if paid:  # the payment arrived: say so, and offer nothing more to pay
        hero = {"kind": "paid", "label": t("paid_label"), "amount": fmt.money(due, values["currency"]),
                "notes": [t("paid_note", amount=fmt.money(due, values["currency"]))]}
        due = Decimal(0)

    bill = values["bill"]
    unit = bill.get("unit")
    brand = settings.brand_name or messages.plain("brand")
    month = fmt.month(_date(bill["period_start"]))
    disclosure = settings.disclosure.for_locale(lang) if settings.disclosure else None
    arrears = _arrears(values, due, t, fmt)
    return {
        "lang": lang, "dir": page_dir, "t": t, "brand": brand, "media": media,
        "events_url": f"{settings.pay_url}/e/{token}",
        "static": settings.static_url if settings.static_url is not None else "static/",
        "name": Markup("<bdi>{}</bdi>").format(values["first_name"]),
        "intro": t("intro_debt" if arrears else "intro_bill", month=month),
        "hero": hero, "pay": _pay(values, due, token, settings, t, fmt),
        "arrears": arrears, "bill": _bill(values, t, fmt),
        "video": _video(video, due, bool(_plan(values, due)), token, settings),
        "usage": usage_chart(bill.get("usage") or (), fmt, page_dir == "rtl", unit),
        "usage_caption": t("usage_caption", unit=unit) if unit else t("usage_caption_no_unit"),
        "qr": _qr(due, token, settings, t), "disclosure": disclosure,
        "contact_url": settings.contact_for(token), "optout_url": settings.optout_for(token),
        "dispute_url": settings.dispute_for(token) if arrears and due > 0 else None,
        "plan": plan_context(plan, t, fmt, settings.pay_url, token) if plan is not None and due > 0 else None,
    }


def _csp(settings: SiteSettings, css: str) -> str:
    """Only the page's own files, its own inline stylesheet (by hash), and beacons and forms to the pay service."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'self'; style-src 'sha256-{digest}'; img-src 'self'; font-src 'self'; "
            f"media-src 'self'; connect-src 'self' {settings.pay_origin}; "
            f"form-action {settings.pay_origin}; base-uri 'none'")


def _document(context: Mapping[str, Any], body: str, fonts: tuple[WebFont, ...], settings: SiteSettings) -> str:
    """The page around its body: head, inline stylesheet with the fonts' rules, preloads, and the CSP allowing them."""
    folder = context["media"] + FONTS
    css = font_faces(fonts, folder) + stylesheet()
    return _template("page.html").render(
        lang=context["lang"], dir=context["dir"], csp=_csp(settings, css), static=context["static"],
        title=context["t"]("page_title", brand=context["brand"]),
        poster=f"{context['media']}poster.jpg" if context["video"] else None,
        preload=[folder + font.name for font in fonts],
        css=Markup(css), body=Markup(body))


def build_site(values: Mapping[str, Any], video: Video | None, *, token: str, amount_due: Decimal,
               settings: SiteSettings, catalogs: Catalogs | None = None, locale: str | None = None,
               media: str = "", paid: bool = False, plan: PlanView | None = None) -> Site:
    """The page folder of one recipient, described (nothing is written).

    ``values`` is the mapping ``jobs.records.record_values`` gives; ``amount_due``
    what the customer is asked to pay (the overdue total in arrears, else the bill
    total; zero or less shows no pay button); ``video`` the checked render outputs
    (``read_video``), or None for a page without video. ``media`` is the folder,
    relative to the page, that the video, poster, captions and the page's font
    subsets go in (``m/<hash>/`` when published content-addressed; the page's own
    folder by default). ``paid`` builds the page as it reads once the payment has
    arrived: thanks, and no pay buttons anywhere. ``plan`` is a payment plan under way: its state takes
    the pay buttons' place (see :func:`plan_block`).
    """
    token = check_token(token)
    if media and not _MEDIA.fullmatch(media):
        raise SiteError(f"must be a relative folder ending in '/' (letters, digits, '_', '-'), got {media!r}",
                        field="media")
    language = _language(values, settings, catalogs or load_catalogs(), locale)
    context = _context(values, video, token, Decimal(amount_due), settings, language, media, paid, plan)
    body = _template("body.html").render(context)
    messages, fmt = language[0], language[1]
    fonts = web_fonts(page_characters(body) | language_characters(messages, fmt, values["currency"]))
    files = {PAGE: _document(context, body, fonts, settings).encode("utf-8")}
    files.update({f"{media}{FONTS}{font.name}": font.data for font in fonts})
    if settings.static_url is None:
        files.update(static_files())
    copies = {f"{media}{name}": video.directory / name for name in COPIED} if video else {}
    return Site(files=MappingProxyType(files), copies=MappingProxyType(copies))
