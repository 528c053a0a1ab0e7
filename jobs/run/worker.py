"""The worker side of a run: render, build and publish one recipient, in a pool process or on a Dask worker.

What crosses to a worker is picklable and needs nothing of the driver's disk:
:class:`Settings` once, then chunks of :class:`Task`; an :class:`Outcome` comes
back for each task. A worker writes only to the store and its own temporary
folder; the driver alone writes the ledger, the manifest and local files.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from billcast.microsite import Disclosure, PlanView, SiteSettings, build_site, load_catalogs, read_video
from billcast.renderer import (BillcastError, SegmentCache, StoryboardError, default_cache_dir, parse_storyboard, plan,
                               render)

from ..links import recipient_links
from ..mailmerge import email_gif, qr_png, qr_target
from ..publish import Extra, media_folder, publish_recipient, published_hash
from ..records import Record, record_values
from ..store import ObjectStore, open_store
from .digests import code_digest


@dataclass(frozen=True)
class Settings:
    """What a worker needs to render, build and publish any recipient of the campaign (picklable).

    Nothing in it needs the driver's disk: the storyboards travel as text, a
    worker elsewhere uses its own temporary folder (``work_dir`` None) and, when
    ``worker_cache``, its own segment cache folder.
    """

    store_url: str
    store_endpoint_url: str | None
    store_region: str | None
    max_connections: int
    public_url: str
    pay_url: str
    site: SiteSettings
    cache_dir: Path | None
    size: tuple[int, int] | None
    work_dir: Path | None  # None: the worker's own temporary folder
    recipients_dir: Path  # the driver's: it alone writes there
    boards: tuple[tuple[str, str], ...] = ()  # storyboard path -> its text, as the driver hashed it
    code: str = ""  # the driver's code_digest(): a worker running other code refuses to render
    assets: Path | None = None  # the campaign's assets folder (the same path on every worker); None: packaged
    worker_cache: bool = False  # the segment cache is the worker's $BILLCAST_CACHE_DIR or default, not cache_dir
    shared_cache: bool = False  # share segments between hosts through the store (jobs.shared_cache)
    link_days: int = 1  # how long a link lives once published: no file of it is cached longer


@dataclass(frozen=True)
class Task:
    """One recipient to render and publish; built by the driver from a valid record."""

    seq: int
    line: int
    record: Record
    storyboard: Path
    name: str
    variant: str
    token: str
    content_hash: str
    amount_due: Decimal
    paid: bool = False  # the ledger has their payment: publish the page as it reads once paid
    plan: PlanView | None = None  # a payment plan under way: its state in place of the pay buttons


@dataclass(frozen=True)
class Outcome:
    """What a worker did for one task, for the driver to record."""

    customer_id: str
    status: str  # published | recorded (live already, ledger behind) | refused (by its storyboard) | failed
    stage: str = ""
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    thumb_size: tuple[int, int] | None = None  # the email thumbnail's, for email.html (published only)
    qr: bytes | None = None  # qr.png as published, for the driver to keep beside email.html (published only)


@lru_cache(maxsize=4)
def _store(url: str, endpoint_url: str | None, region: str | None, connections: int) -> ObjectStore:
    return open_store(url, endpoint_url=endpoint_url, region=region, max_connections=connections)


def settings_store(settings: Settings) -> ObjectStore:
    """The campaign's store, opened once per worker process."""
    return _store(settings.store_url, settings.store_endpoint_url, settings.store_region, settings.max_connections)


@lru_cache(maxsize=16)
def _board(path: str, text: str, assets: Path | None):
    return parse_storyboard(text, path=path, assets_dir=assets)


def _storyboard(settings: Settings, task: Task):
    """The task's storyboard from the text the driver hashed (a worker elsewhere has no campaign folder)."""
    for path, text in settings.boards:
        if path == str(task.storyboard):
            return _board(path, text, settings.assets)
    return _board(str(task.storyboard), task.storyboard.read_text(encoding="utf-8"), settings.assets)


@lru_cache(maxsize=1)
def _own_code(assets: Path | None = None) -> str:
    """This worker's code digest, computed once per assets folder (it reads every asset and template)."""
    return code_digest(assets)


@lru_cache(maxsize=4)
def _cache(folder: Path, shared: bool, store_args: tuple[str, str | None, str | None, int]) -> SegmentCache:
    """One cache object per folder and process, so its eviction scan runs every few puts, not every recipient."""
    if not shared:
        return SegmentCache(folder)
    from ..shared_cache import SharedSegmentCache

    return SharedSegmentCache(folder, _store(*store_args))


def env_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """``$BILLCAST_CACHE_DIR``, else the user's segment cache folder; None when it says ``off``."""
    folder = environ.get("BILLCAST_CACHE_DIR")
    if folder == "off":
        return None
    return Path(folder) if folder else default_cache_dir()


def segment_cache(settings: Settings) -> SegmentCache | None:
    """The worker's segment cache: the campaign's folder (or this worker's own), shared through the store if asked."""
    folder = env_cache_dir(os.environ) if settings.worker_cache else settings.cache_dir
    if folder is None:
        return None
    return _cache(folder, settings.shared_cache, (settings.store_url, settings.store_endpoint_url,
                                                   settings.store_region, settings.max_connections))


def _work_folder(settings: Settings, task: Task) -> Path:
    """Where a worker renders one recipient: its own per process, so a retried chunk never meets a stale one."""
    root = settings.work_dir if settings.work_dir is not None else Path(tempfile.gettempdir()) / "billcast-work"
    return root / f"{task.content_hash[:16]}-{os.getpid()}"


def _cpu() -> float:
    """CPU seconds of this process and the children it has waited for (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _render_and_publish(settings: Settings, task: Task, store: ObjectStore,
                        seconds: dict[str, float]) -> tuple[tuple[int, int], bytes]:
    """Render, build and publish one recipient; return the email thumbnail's size and the QR code's bytes."""
    board = _storyboard(settings, task)
    values = record_values(task.record)
    work = _work_folder(settings, task)
    started = _cpu()
    timeline = plan(board, values, recipient_links(settings.public_url, settings.pay_url, task.token),
                    size=settings.size)
    render(timeline, work / "video", cache=segment_cache(settings))
    size = email_gif(work / "video" / "thumb.gif", work / "video" / "email.gif", rtl=timeline.direction == "rtl")
    qr_png(qr_target(settings.public_url, settings.pay_url, task.token, task.amount_due), work / "video" / "qr.png")
    seconds["render"] = _cpu() - started

    started = _cpu()
    site_settings = replace(settings.site, disclosure=Disclosure.from_translations(
        board.model.translations, board.model.default_language))
    video = read_video(work / "video")
    site = build_site(values, video, token=task.token, amount_due=task.amount_due, settings=site_settings,
                      catalogs=load_catalogs(), media=media_folder(task.content_hash), plan=task.plan)
    paid_site = build_site(values, video, token=task.token, amount_due=task.amount_due, settings=site_settings,
                           catalogs=load_catalogs(), media=media_folder(task.content_hash), paid=True)
    seconds["build"] = _cpu() - started

    started = _cpu()
    folder = work / "video"
    publish_recipient(store, task.token, task.content_hash, site,
                      [Extra("poster.jpg", folder / "poster.jpg"), Extra("thumb.gif", folder / "email.gif"),
                       Extra("qr.png", folder / "qr.png")], link_seconds=settings.link_days * 86400,
                      paid_site=paid_site, paid=task.paid)
    qr = (folder / "qr.png").read_bytes()
    seconds["publish"] = _cpu() - started
    shutil.rmtree(work, ignore_errors=True)
    return size, qr


def work(settings: Settings, task: Task) -> Outcome:
    """One recipient, in a worker: live already with this hash, or render, build and publish it now."""
    seconds: dict[str, float] = {}
    customer_id = task.record.customer_id
    stage = "publish"
    try:
        store = settings_store(settings)
        if published_hash(store, task.token) == task.content_hash:
            return Outcome(customer_id, "recorded", seconds=seconds)
        stage = "render"
        size, qr = _render_and_publish(settings, task, store, seconds)
    except StoryboardError as exc:  # the storyboard cannot take this record: a refusal, not a failure
        shutil.rmtree(_work_folder(settings, task), ignore_errors=True)
        return Outcome(customer_id, "refused", stage=exc.field or "storyboard", message=str(exc), seconds=seconds)
    except BillcastError as exc:
        shutil.rmtree(_work_folder(settings, task), ignore_errors=True)
        return Outcome(customer_id, "failed", stage=stage, message=str(exc), seconds=seconds)
    except OSError as exc:
        shutil.rmtree(_work_folder(settings, task), ignore_errors=True)
        return Outcome(customer_id, "failed", stage=stage, message=f"{type(exc).__name__}: {exc.strerror or exc}",
                       seconds=seconds)
    return Outcome(customer_id, "published", seconds=seconds, thumb_size=size, qr=qr)


def work_chunk(settings: Settings, tasks: Sequence[Task]) -> list[Outcome]:
    """A chunk of recipients, in a worker, one after the other; an outcome for each, in order."""
    if settings.code and _own_code(settings.assets) != settings.code:
        _own_code.cache_clear()  # the files may have changed since this worker first looked
    if settings.code and _own_code(settings.assets) != settings.code:
        message = ("this worker runs other code than the driver (package version, assets or page templates "
                   "differ): install the same Billcast on every worker")
        return failed_all(tasks, message)
    return [work(settings, task) for task in tasks]


def failed_all(tasks: Sequence[Task], message: str) -> list[Outcome]:
    """Every task of a chunk failed for one reason at the worker level (other code, or the chunk never came back)."""
    return [Outcome(t.record.customer_id, "failed", stage="worker", message=message) for t in tasks]
