"""A campaign's site settings: one frozen object, read at the entry point and passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
import re
from urllib.parse import urlsplit

from .errors import SiteError
from .links import check_base_url, dispute_link, optout_link, origin
from .locales import pick_language

_STATIC_URL = re.compile(r"[A-Za-z0-9._:/-]*/")


@dataclass(frozen=True)
class Disclosure:
    """The legal text a debt collector must show, per language (``en``, ``it``, or a tag like ``pt-BR``)."""

    texts: Mapping[str, str]
    default_language: str = "en"

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", MappingProxyType(dict(self.texts)))

    @classmethod
    def from_translations(cls, translations: Mapping[str, Mapping[str, str]], default_language: str,
                          key: str = "disclosure") -> Disclosure | None:
        """The ``disclosure`` text of each language of a storyboard's translations, or None if it has none."""
        texts = {lang: texts[key] for lang, texts in translations.items() if texts.get(key, "").strip()}
        return cls(texts, default_language) if texts else None

    def for_locale(self, locale: str) -> str | None:
        """The text for a locale: its exact tag, then its language, then the default language."""
        language = pick_language(self.texts, locale, self.default_language)
        return self.texts.get(language)


@dataclass(frozen=True)
class SiteSettings:
    """Where pages link to and what every page of a campaign shows.

    ``contact_url`` and ``optout_url`` may hold ``{token}``, replaced by the
    recipient's token; by default they are ``{public_url}/contact`` and the
    service's opt-out page, ``{pay_url}/r/{token}/optout`` (the service is at
    ``pay_url``; a page's own origin may be a bucket or CDN). ``brand_name``
    overrides the catalogue's.
    ``static_url`` is where the shared stylesheet, script, logo and fonts are
    published once for the whole campaign (relative to the page, like
    ``../../static/1a2b3c/``); unset, every page folder carries its own copy.
    """

    pay_url: str
    public_url: str
    contact_url: str | None = None
    optout_url: str | None = None
    brand_name: str | None = None
    disclosure: Disclosure | None = None
    default_locale: str = "en-US"
    static_url: str | None = None

    def __post_init__(self) -> None:
        if self.static_url is not None and not _STATIC_URL.fullmatch(self.static_url):
            raise SiteError(f"must be a URL path ending in '/' (letters, digits, '.', '_', '-', ':', '/'), "
                            f"got {self.static_url!r}", field="static_url")
        object.__setattr__(self, "pay_url", check_base_url(self.pay_url, "pay_url"))
        object.__setattr__(self, "public_url", check_base_url(self.public_url, "public_url"))
        for name in ("contact_url", "optout_url"):
            value = getattr(self, name)
            if value is not None and not _absolute(value):
                raise SiteError(f"must be an absolute http(s) or mailto: URL, got {value!r}", field=name)

    @property
    def pay_origin(self) -> str:
        return origin(self.pay_url)

    def contact_for(self, token: str) -> str:
        return (self.contact_url or f"{self.public_url}/contact").replace("{token}", token)

    def optout_for(self, token: str) -> str:
        return self.optout_url.replace("{token}", token) if self.optout_url else optout_link(self.pay_url, token)

    def dispute_for(self, token: str) -> str:
        return dispute_link(self.pay_url, token)


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)) or (parts.scheme == "mailto" and bool(parts.path))
