"""Putting a recipient's files into the object store so that a page is seen whole or not at all.

Keys hold nothing personal: ``r/<token>/`` for the recipient (128 bits of secret
entropy), content hashes below it. A recipient's folder::

    r/<token>/m/<hash16>/video.mp4, poster.jpg, captions.vtt   the page's media, content-addressed, immutable
    r/<token>/m/<hash16>/fonts/<font>-<hash16>.woff2           the page's fonts, cut to its text, immutable
    r/<token>/thumb.gif, poster.jpg, qr.png                     for emails and paper bills, at stable addresses

all of them ``private`` (the recipient's browser may keep them, a CDN may not) for no longer than
the link lives, so nothing personal outlives an expired link in a shared cache;
    r/<token>/m/<hash16>/paid.html                              the same page as it reads once paid, no-store
    r/<token>/index.html                                        written last, no-store, carries the content hash

and the campaign's shared page files once under ``static/<hash16>/``. A page
becomes visible only when ``index.html`` lands, after everything it names; media
of an earlier version are deleted only after the new page is in place, so a
visitor never meets a page whose video is gone. A page's fonts are its own (they
hold the glyphs of its text), so they live and go with its media.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from billcast.microsite import Site

from .store import IMMUTABLE, NO_STORE, ObjectNotFound, ObjectStore, private_cache

PAGE = "index.html"
PAID_PAGE = "paid.html"
HTML = "text/html; charset=utf-8"
HASH_KEY = "content-hash"
STATE_KEY = "page-state"  # open | paid
EMAIL_MAX_AGE = 3600  # email images: stable addresses, replaced when the recipient is republished


def recipient_prefix(token: str) -> str:
    return f"r/{token}/"


def media_folder(content_hash: str) -> str:
    """The page-relative folder of a version's media: ``m/<first 16 hex of its content hash>/``."""
    return f"m/{content_hash[:16]}/"


def static_digest(files: Mapping[str, bytes]) -> str:
    """A hash of the shared page files, names and bytes: their folder changes whenever any of them does."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def publish_static(store: ObjectStore, files: Mapping[str, bytes]) -> str:
    """Put the shared page files (``static/...`` names) under ``static/<hash>/`` once; return that folder's key."""
    folder = f"static/{static_digest(files)}/"
    names = sorted(files)
    marker = folder + names[-1].removeprefix("static/")
    if not store.exists(marker):  # the last one is written last: if it is there, all are
        for name in names:
            store.put_bytes(folder + name.removeprefix("static/"), files[name], cache_control=IMMUTABLE)
    return folder


def published_hash(store: ObjectStore, token: str) -> str | None:
    """The content hash of the page now live at ``r/<token>/``, or None when there is none."""
    info = store.head(recipient_prefix(token) + PAGE)
    return info.metadata.get(HASH_KEY) if info else None


@dataclass(frozen=True)
class Extra:
    """A file published beside the page at a stable address: from a path, or from bytes."""

    name: str
    path: Path | None = None
    data: bytes | None = None


def publish_recipient(store: ObjectStore, token: str, content_hash: str, site: Site,
                      extras: Iterable[Extra] = (), *, link_seconds: int, paid_site: Site | None = None,
                      paid: bool = False) -> list[str]:
    """Publish one recipient's page and files, page last; return the keys written, page included.

    ``link_seconds`` is how long the link lives from now: no file may be cached longer.

    ``paid_site`` is the page as it reads once paid: its page is kept beside the
    media (with any file of its own, such as a font the open page does not use)
    so the payment service can put it live without the record (:func:`show_paid`);
    ``paid`` publishes it as the page straight away.

    Anything of an earlier version that the new page no longer names is deleted
    after the page is replaced. If an upload fails before the page is written,
    this version's media are removed again and the old page (if any) stays live.
    """
    prefix = recipient_prefix(token)
    media_cache = private_cache(link_seconds, immutable=True)
    email_cache = private_cache(min(EMAIL_MAX_AGE, link_seconds))
    paid_page = paid_site.files[PAGE] if paid_site is not None else None
    files = {**(paid_site.files if paid_site is not None else {}), **site.files}
    written: list[str] = []
    try:
        for name, source in sorted(site.copies.items()):
            store.put_file(prefix + name, Path(source), cache_control=media_cache)
            written.append(prefix + name)
        for name, data in sorted(files.items()):
            if name != PAGE:
                store.put_bytes(prefix + name, data, cache_control=media_cache)
                written.append(prefix + name)
        for extra in extras:
            if extra.path is not None:
                store.put_file(prefix + extra.name, extra.path, cache_control=email_cache)
            else:
                store.put_bytes(prefix + extra.name, extra.data or b"", cache_control=email_cache)
            written.append(prefix + extra.name)
        if paid_page is not None:
            key = prefix + media_folder(content_hash) + PAID_PAGE
            store.put_bytes(key, paid_page, content_type=HTML, cache_control=NO_STORE)
            written.append(key)
    except BaseException:
        old = published_hash_or_none(store, token)
        if old != content_hash:
            store.delete(key for key in written if key.startswith(prefix + "m/"))
        raise
    page = paid_page if paid and paid_page is not None else site.files[PAGE]
    store.put_bytes(prefix + PAGE, page, cache_control=NO_STORE,
                    metadata={HASH_KEY: content_hash, STATE_KEY: "paid" if paid else "open"})
    written.append(prefix + PAGE)
    keep = set(written)
    store.delete([key for key in store.list(prefix + "m/") if key not in keep])
    return written


def show_paid(store: ObjectStore, token: str) -> bool:
    """Put the recipient's paid page live in place of their page; False when they have no page (or no paid one).

    Idempotent: a page already showing paid is left as it is.
    """
    prefix = recipient_prefix(token)
    info = store.head(prefix + PAGE)
    if info is None or HASH_KEY not in info.metadata:
        return False
    if info.metadata.get(STATE_KEY) == "paid":
        return True
    content_hash = info.metadata[HASH_KEY]
    try:
        paid_page = store.get(prefix + media_folder(content_hash) + PAID_PAGE)
    except ObjectNotFound:
        return False
    store.put_bytes(prefix + PAGE, paid_page, content_type=HTML, cache_control=NO_STORE,
                    metadata={HASH_KEY: content_hash, STATE_KEY: "paid"})
    return True


_PAY_STATE = re.compile(rb"<!--pay-state:([A-Za-z0-9-]{1,35})-->.*?<!--/pay-state-->", re.S)


def show_plan(store: ObjectStore, token: str, pay_box: Callable[[str], str]) -> bool:
    """Put a payment plan's state in the live page's pay card; False when there is no page to change.

    ``pay_box(lang)`` gives the card's new inside in the page's language (the
    ``lang`` its ``pay-state`` marker names). A page showing paid is left alone; one
    changed so is marked ``page-state: plan``.
    """
    key = recipient_prefix(token) + PAGE
    info = store.head(key)
    if info is None or HASH_KEY not in info.metadata or info.metadata.get(STATE_KEY) == "paid":
        return False
    page = store.get(key)
    match = _PAY_STATE.search(page)
    if match is None:
        return False
    lang = match.group(1).decode()
    box = f"<!--pay-state:{lang}-->\n{pay_box(lang)}\n<!--/pay-state-->".encode()
    store.put_bytes(key, page[:match.start()] + box + page[match.end():], content_type=HTML, cache_control=NO_STORE,
                    metadata={HASH_KEY: info.metadata[HASH_KEY], STATE_KEY: "plan"})
    return True


def published_hash_or_none(store: ObjectStore, token: str) -> str | None:
    """Like :func:`published_hash`, but a store that cannot answer counts as no page."""
    try:
        return published_hash(store, token)
    except Exception:  # noqa: BLE001 - only used while cleaning up after another failure
        return None


def unpublish(store: ObjectStore, token: str) -> None:
    """Take a recipient's page down (the page first, so nothing half-gone is ever shown), then the rest."""
    prefix = recipient_prefix(token)
    store.delete([prefix + PAGE])
    store.delete(list(store.list(prefix)))
