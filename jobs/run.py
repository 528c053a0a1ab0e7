"""``billcast run``: every recipient of a campaign validated, rendered, built and published, resumably.

The driver streams the input, refuses bad records (``errors.csv``), picks each
recipient's storyboard and variant, and skips whoever the ledger already shows
published with the same content hash. The rest go out in chunks to an executor
(``jobs.executors``: in the driver, a local process pool, or a Dask cluster)
whose workers render, build and publish; the driver alone writes the ledger, the
manifest and the recipients' local files. At most a few chunks per worker are in
flight and the manifest waits for at most that many rows, so memory stays flat
however long the input.

A chunk may run more than once (its worker died and it was retried
elsewhere); that is safe because publishing is idempotent: the same record
gives the same bytes at the same keys, the page is written last, and a
recipient whose page is live with the right hash is not rendered again. The
driver takes each chunk's result once and records it once. Killed at any
moment, a run leaves no page half-published, and the next run picks up where
it stopped.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any, TextIO

from billcast.microsite import Disclosure, SiteSettings, build_site, load_catalogs, page_link, read_video, static_files
from billcast.renderer import (ENGINE_VERSION, BillcastError, SegmentCache, StoryboardError, default_assets_dir,
                      default_cache_dir, parse_storyboard, plan, render)

from .campaign import Campaign, ChoiceError, choose, campaign_hash
from .executors import Executor, open_executor
from .ledger import Ledger
from .links import recipient_links, recipient_token
from .mailmerge import email_gif, email_html, qr_png, qr_target
from .publish import Extra, media_folder, publish_recipient, publish_static, published_hash, recipient_prefix
from .record_files import iter_records
from .records import Record, RecordErrors, amount_due, record_values
from .store import ObjectStore, open_store

MANIFEST_FIELDS = ("customer_id", "link", "poster_url", "thumb_url", "qr_url", "storyboard", "variant", "status")
ERROR_FIELDS = ("line", "customer_id", "field", "message")
STAGES = ("render", "build", "publish")
MAX_CHUNK = 8  # recipients a task: amortizes scheduling (see docs/SCALING.md), small enough to share the tail


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
    worker_cache: bool = False  # the segment cache is the worker's $BILLCAST_CACHE_DIR or default, not cache_dir
    shared_cache: bool = False  # share segments between hosts through the store (jobs.shared_cache)


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


@dataclass(frozen=True)
class Outcome:
    customer_id: str
    status: str  # published | recorded (live already, ledger behind) | refused (by its storyboard) | failed
    stage: str = ""
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    thumb_size: tuple[int, int] | None = None  # the email thumbnail's, for email.html (published only)
    qr: bytes | None = None  # qr.png as published, for the driver to keep beside email.html (published only)


@dataclass
class Counts:
    published: int = 0
    unchanged: int = 0
    refused: int = 0
    failed: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    executor: str = "local"
    slots: int = 1  # chunks that could run at once at the end of the run (workers x threads)
    chunk: int = 1  # recipients a chunk

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 1
        return 3 if self.refused else 0


# --- digests: everything that shapes a recipient's outputs ----------------------------------------

def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_digest() -> str:
    """The renderer's engine version, the package version, the assets and the page builder's files."""
    digest = hashlib.sha256()
    try:
        version = metadata.version("billcast")
    except metadata.PackageNotFoundError:
        version = "0"
    digest.update(f"{version}\0{ENGINE_VERSION}\0".encode())
    digest.update(_tree_digest(default_assets_dir()).encode())
    site_root = Path(str(resources.files("billcast.microsite")))
    for folder in ("templates", "catalogs", "static"):
        digest.update(_tree_digest(site_root / folder).encode())
    return digest.hexdigest()


def recipient_hash(run_digest: str, storyboard_bytes: bytes, record: Record, token: str, variant: str) -> str:
    values = json.dumps(record_values(record), sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256()
    for part in (run_digest.encode(), hashlib.sha256(storyboard_bytes).digest(), values.encode(), token.encode(),
                 variant.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


# --- the worker side --------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _store(url: str, endpoint_url: str | None, region: str | None, connections: int) -> ObjectStore:
    return open_store(url, endpoint_url=endpoint_url, region=region, max_connections=connections)


def settings_store(settings: Settings) -> ObjectStore:
    return _store(settings.store_url, settings.store_endpoint_url, settings.store_region, settings.max_connections)


@lru_cache(maxsize=16)
def _board(path: str, text: str):
    return parse_storyboard(text, path=path)


def _storyboard(settings: Settings, task: Task):
    """The task's storyboard from the text the driver hashed (a worker elsewhere has no campaign folder)."""
    for path, text in settings.boards:
        if path == str(task.storyboard):
            return _board(path, text)
    return _board(str(task.storyboard), task.storyboard.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _own_code() -> str:
    return code_digest()


@lru_cache(maxsize=4)
def _cache(folder: Path, shared: bool, store_args: tuple[str, str | None, str | None, int]) -> SegmentCache:
    """One cache object per folder and process, so its eviction scan runs every few puts, not every recipient."""
    if not shared:
        return SegmentCache(folder)
    from .shared_cache import SharedSegmentCache

    return SharedSegmentCache(folder, _store(*store_args))


def segment_cache(settings: Settings) -> SegmentCache | None:
    """The worker's segment cache: the campaign's folder (or this worker's own), shared through the store if asked."""
    folder = settings.cache_dir
    if settings.worker_cache:
        env = os.environ.get("BILLCAST_CACHE_DIR")
        folder = None if env == "off" else Path(env) if env else default_cache_dir()
    if folder is None:
        return None
    return _cache(folder, settings.shared_cache, (settings.store_url, settings.store_endpoint_url,
                                                   settings.store_region, settings.max_connections))


def _work_folder(settings: Settings, task: Task) -> Path:
    """Where a worker renders one recipient: its own per process, so a retried chunk never meets a stale one."""
    root = settings.work_dir if settings.work_dir is not None else Path(tempfile.gettempdir()) / "billcast-work"
    return root / f"{task.content_hash[:16]}-{os.getpid()}"


def _local_name(customer_id: str) -> str:
    """A recipient's folder name in ``out/recipients``: the id, kept clear of ``.`` and ``..``."""
    return f"_{customer_id}" if customer_id.startswith(".") else customer_id


def recipient_urls(public_url: str, token: str) -> dict[str, str]:
    base = f"{public_url.rstrip('/')}/{recipient_prefix(token)}"
    return {"link": page_link(public_url, token), "poster_url": base + "poster.jpg", "thumb_url": base + "thumb.gif",
            "qr_url": base + "qr.png"}


def _mail_files(settings: Settings, task: Task, size: tuple[int, int] | None = None, qr: bytes | None = None) -> None:
    """``email.html`` and ``qr.png`` in the recipient's local folder (replaced whole); written by the driver."""
    folder = settings.recipients_dir / _local_name(task.record.customer_id)
    urls = recipient_urls(settings.public_url, task.token)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    locale = task.record.locale or settings.site.default_locale
    (tmp / "email.html").write_text(email_html(locale=locale, brand=settings.site.brand_name, link=urls["link"],
                                               thumb_url=urls["thumb_url"], size=size or (480, 270)),
                                    encoding="utf-8")
    if qr is not None:
        (tmp / "qr.png").write_bytes(qr)
    else:
        qr_png(qr_target(settings.public_url, settings.pay_url, task.token, task.amount_due), tmp / "qr.png")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


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
                      catalogs=load_catalogs(), media=media_folder(task.content_hash))
    paid_site = build_site(values, video, token=task.token, amount_due=task.amount_due, settings=site_settings,
                           catalogs=load_catalogs(), media=media_folder(task.content_hash), paid=True)
    seconds["build"] = _cpu() - started

    started = _cpu()
    folder = work / "video"
    publish_recipient(store, task.token, task.content_hash, site,
                      [Extra("poster.jpg", folder / "poster.jpg"), Extra("thumb.gif", folder / "email.gif"),
                       Extra("qr.png", folder / "qr.png")], paid_page=paid_site.files["index.html"], paid=task.paid)
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
    if settings.code and _own_code() != settings.code:
        _own_code.cache_clear()  # the files may have changed since this worker first looked
    if settings.code and _own_code() != settings.code:
        message = ("this worker runs other code than the driver (package version, assets or page templates "
                   "differ): install the same Billcast on every worker")
        return [Outcome(t.record.customer_id, "failed", stage="worker", message=message) for t in tasks]
    return [work(settings, task) for task in tasks]


# --- the driver ---------------------------------------------------------------------------------------

class _Csv:
    """A CSV file written under a temporary name and renamed into place when complete."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.file: TextIO = self.tmp.open("w", encoding="utf-8", newline="")
        self.writer = csv.DictWriter(self.file, fields)
        self.writer.writeheader()

    def row(self, row: dict[str, Any]) -> None:
        self.writer.writerow(row)

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)


def count_records(path: Path) -> int | None:
    """How many records the input holds (for the progress bar), read quickly without parsing."""
    try:
        with path.open("rb") as f:
            if path.suffix.lower() == ".csv":
                return max(sum(1 for _ in csv.reader(line.decode("utf-8", "replace") for line in f)) - 1, 0)
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                return sum(1 for line in f if line.strip())
    except OSError:
        return None
    return None


@dataclass
class _Run:
    campaign: Campaign
    ledger: Ledger
    settings: Settings
    secret: bytes
    run_digest: str
    manifest: _Csv
    errors: _Csv
    counts: Counts
    progress: Any
    log: Callable[[str], None]
    boards: dict[Path, bytes] = field(default_factory=dict)
    local_files: bool = True  # out/recipients/<id>/email.html and qr.png (off only for the driver benchmark)
    fresh: bool = False  # the ledger knew no recipient of the campaign when the run began: nothing to look up
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_row: int = 0

    def board_bytes(self, path: Path) -> bytes:
        if path not in self.boards:
            self.boards[path] = path.read_bytes()
        return self.boards[path]

    def emit(self, seq: int, row: dict[str, Any]) -> None:
        """Manifest rows go out in input order (a bounded window of them waits for slower ones)."""
        self.rows[seq] = row
        while self.next_row in self.rows:
            self.manifest.row(self.rows.pop(self.next_row))
            self.next_row += 1

    def refuse(self, seq: int, line: int, customer_id: str | None, fieldname: str, message: str) -> None:
        self.counts.refused += 1
        self.errors.row({"line": line, "customer_id": customer_id or "", "field": fieldname, "message": message})
        self.emit(seq, {"customer_id": customer_id or "", "status": "refused"})
        self._tick()

    def _tick(self) -> None:
        self.progress.set_postfix(refused=self.counts.refused, failed=self.counts.failed, refresh=False)
        self.progress.update(1)

    def manifest_row(self, task: Task, status: str) -> dict[str, Any]:
        return {"customer_id": task.record.customer_id, **recipient_urls(self.settings.public_url, task.token),
                "storyboard": task.name, "variant": task.variant, "status": status}

    def task_for(self, seq: int, line: int, record: Record) -> Task | None:
        """The recipient's task, or None when refused (no rule, or a rule's expression failed)."""
        values = record_values(record)
        try:
            choice = choose(self.campaign, values, record.customer_id)
        except ChoiceError as exc:
            self.refuse(seq, line, record.customer_id, exc.field or "rules", exc.message)
            return None
        if choice is None:
            self.refuse(seq, line, record.customer_id, "rules", "no rule matches this record; end the rules with "
                        "one that has no `when`")
            return None
        token = recipient_token(self.secret, self.campaign.id, record.customer_id)
        content = recipient_hash(self.run_digest, self.board_bytes(choice.storyboard), record, token, choice.variant)
        return Task(seq, line, record, choice.storyboard, choice.name, choice.variant, token, content,
                    amount_due(record))

    def unchanged(self, task: Task) -> None:
        self.counts.unchanged += 1
        self.emit(task.seq, self.manifest_row(task, "unchanged"))
        folder = self.settings.recipients_dir / _local_name(task.record.customer_id)
        if self.local_files and not (folder / "email.html").exists():
            _mail_files(self.settings, task)
        self._tick()

    def finish(self, task: Task, outcome: Outcome) -> None:
        """Record what a worker did for one recipient: the only place the ledger is written (once a recipient)."""
        for stage, secs in outcome.seconds.items():
            self.counts.seconds[stage] = self.counts.seconds.get(stage, 0.0) + secs
        if outcome.status == "refused":
            self.counts.refused += 1
            self.errors.row({"line": task.line, "customer_id": task.record.customer_id, "field": outcome.stage,
                             "message": outcome.message})
            self.emit(task.seq, {"customer_id": task.record.customer_id, "storyboard": task.name,
                                 "variant": task.variant, "status": "refused"})
        elif outcome.status == "failed":
            self.counts.failed += 1
            self.errors.row({"line": task.line, "customer_id": task.record.customer_id, "field": outcome.stage,
                             "message": outcome.message})
            self.log(f"{self.campaign.path.name}:{task.line}: customer {task.record.customer_id}: "
                     f"{outcome.stage} failed: {outcome.message.splitlines()[0] if outcome.message else ''}")
            self.emit(task.seq, {"customer_id": task.record.customer_id, "storyboard": task.name,
                                 "variant": task.variant, "status": "failed"})
        else:
            if self.local_files:
                _mail_files(self.settings, task, outcome.thumb_size, outcome.qr)
            now = dt.datetime.now(dt.timezone.utc)
            debt = task.record.debt
            self.ledger.record_published(
                campaign_id=self.campaign.id, customer_id=task.record.customer_id, token=task.token,
                storyboard=task.name, variant=task.variant, amount_due=task.amount_due, currency=task.record.currency,
                content_hash=task.content_hash, published_at=now,
                expires_at=now + dt.timedelta(days=self.campaign.link_days),
                plan_installments=debt.plan_offer.installments if debt and debt.plan_offer else None,
                days_past_due=debt.days_past_due if debt else None)
            self.counts.published += 1
            self.emit(task.seq, self.manifest_row(task, "published"))
        self._tick()


def _settings(campaign: Campaign, *, connections: int, cache_dir: Path | None, static_url: str,
              remote: bool, shared_cache: bool, boards: dict[Path, bytes]) -> Settings:
    site = SiteSettings(pay_url=campaign.pay_url, public_url=campaign.public_url, contact_url=campaign.contact_url,
                        optout_url=campaign.optout_url, brand_name=campaign.brand_name,
                        default_locale=campaign.default_locale, static_url=static_url)
    return Settings(store_url=campaign.store, store_endpoint_url=campaign.store_endpoint_url,
                    store_region=campaign.store_region, max_connections=connections,
                    public_url=campaign.public_url, pay_url=campaign.pay_url, site=site, cache_dir=cache_dir,
                    size=campaign.size, work_dir=None if remote else campaign.out / ".work",
                    recipients_dir=campaign.out / "recipients",
                    boards=tuple((str(path), data.decode("utf-8")) for path, data in boards.items()),
                    code=code_digest(), worker_cache=remote and campaign.cache is None, shared_cache=shared_cache)


def campaign_cache_dir(campaign: Campaign, environ: dict[str, str] | os._Environ) -> Path | None:
    """The segment cache: the campaign's ``cache``, else ``$BILLCAST_CACHE_DIR``, else the user's; ``off`` for none."""
    if campaign.cache is not None:
        return campaign.cache
    folder = environ.get("BILLCAST_CACHE_DIR")
    if folder == "off":
        return None
    return Path(folder) if folder else default_cache_dir()


def _progress(total: int | None, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="rcpt", dynamic_ncols=True, disable=None if show else True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]")


def chunk_size(total: int | None, slots: int, chunk: int | None = None) -> int:
    """Recipients a task: ``chunk`` if given, else enough to give every slot about four tasks, at most MAX_CHUNK."""
    if chunk:
        return max(chunk, 1)
    if total is None:
        return MAX_CHUNK
    return min(max(-(-total // (4 * max(slots, 1))), 1), MAX_CHUNK)


WorkFn = Callable[[Settings, Sequence[Task]], list[Outcome]]


def run_campaign(campaign: Campaign, *, secret: bytes, workers: int = 1, show_progress: bool = False,
                 log: Callable[[str], None] | None = None, executor: str = "local", chunk: int | None = None,
                 shared_cache: bool | None = None, work_fn: WorkFn = work_chunk,
                 local_files: bool = True) -> Counts:
    """Validate, render, build and publish every recipient of ``campaign``; return what happened.

    ``executor`` is ``local`` (a pool of ``workers`` processes) or a Dask scheduler's address
    (``tcp://host:8786``) or scheduler file; ``chunk`` the recipients a task (default: see
    :func:`chunk_size`); ``shared_cache`` shares the segment cache through the store
    (default: the campaign's ``shared_cache``, if it has one). ``work_fn`` and
    ``local_files`` are for benchmarks of the driver alone.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    if shared_cache is None:
        shared_cache = bool(getattr(campaign, "shared_cache", False))
    remote = executor != "local"
    campaign.out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(campaign.ledger)
    ledger.ensure_campaign(campaign.id, link_days=campaign.link_days, config_hash=campaign_hash(campaign))
    connections = 10 if remote else max(4 * workers, 10)
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region,
                       max_connections=connections)
    static_folder = publish_static(store, static_files(arabic=True))
    boards = {path: path.read_bytes() for path in campaign.storyboards}
    settings = _settings(campaign, connections=connections, cache_dir=campaign_cache_dir(campaign, os.environ),
                         static_url="../../" + static_folder, remote=remote, shared_cache=shared_cache, boards=boards)
    counts = Counts()
    total = count_records(campaign.input)
    run = _Run(campaign, ledger, settings, secret, code_digest() + campaign_hash(campaign),
               _Csv(campaign.out / "manifest.csv", MANIFEST_FIELDS), _Csv(campaign.out / "errors.csv", ERROR_FIELDS),
               counts, _progress(total, show_progress), log, boards=boards, local_files=local_files,
               fresh=not any(ledger.counts(campaign.id).values()))
    try:
        with open_executor(executor, work_fn, settings, workers=workers) as pool:
            counts.executor, counts.chunk = pool.name, chunk_size(total, pool.slots, chunk)
            _drive(run, pool, counts.chunk)
            counts.slots = pool.slots
    finally:
        run.progress.close()
        ledger.close()
    run.manifest.close()
    run.errors.close()
    if settings.work_dir is not None:
        shutil.rmtree(settings.work_dir, ignore_errors=True)
    return counts


def _inputs(run: _Run) -> Iterator[tuple[int, int, Record | RecordErrors]]:
    for seq, (line, item) in enumerate(iter_records(run.campaign.input)):
        yield seq, line, item


class _Feeder:
    """Chunks out to the executor, results back, with a bounded number of records held anywhere.

    In flight: at most two chunks per slot (one running, one queued, so no worker
    waits for the driver). Waiting for the manifest: at most ``window`` rows behind
    the oldest unfinished recipient; past that, the driver stops reading input.
    """

    def __init__(self, run: _Run, pool: Executor, size: int) -> None:
        self.run, self.pool, self.size = run, pool, size
        self.chunk: list[Task] = []
        self.sent: dict[int, list[Task]] = {}
        self.next_id = 0

    def limit(self) -> int:
        return 2 * self.pool.slots

    def window(self) -> int:
        return (self.limit() + 2) * self.size

    def add(self, task: Task) -> None:
        self.chunk.append(task)
        if len(self.chunk) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.chunk:
            chunk, self.chunk = self.chunk, []
            self.sent[self.next_id] = chunk
            self.pool.submit(self.next_id, chunk)
            self.next_id += 1

    def settle(self) -> None:
        for done in self.pool.next_done():
            tasks = self.sent.pop(done.chunk_id)
            if done.error is not None:  # the chunk never came back (its workers kept dying, or a bug): failed
                message = f"{type(done.error).__name__}: {done.error}"
                outcomes = [Outcome(t.record.customer_id, "failed", stage="worker", message=message) for t in tasks]
            else:
                outcomes = done.result
            for task, outcome in zip(tasks, outcomes, strict=True):
                self.run.finish(task, outcome)

    def room(self, seq: int) -> None:
        """Wait until record ``seq`` may be read: a free slot for its chunk, and the manifest window not full."""
        while True:
            if self.pool.in_flight >= self.limit():
                self.settle()
            elif seq - self.run.next_row >= self.window() and (self.chunk or self.pool.in_flight):
                if self.chunk:
                    self.flush()
                else:
                    self.settle()
            else:
                return

    def drain(self) -> None:
        self.flush()
        while self.pool.in_flight:
            self.settle()


def _drive(run: _Run, pool: Executor, size: int) -> None:
    feeder = _Feeder(run, pool, size)
    for seq, line, item in _inputs(run):
        feeder.room(seq)
        if isinstance(item, RecordErrors):
            first = item.errors[0]
            for err in item.errors[1:]:
                run.errors.row({"line": err.line or line, "customer_id": err.customer_id or "",
                                "field": err.field or "", "message": err.message})
            run.refuse(seq, first.line or line, first.customer_id, first.field or "", first.message)
            continue
        task = run.task_for(seq, line, item)
        if task is None:
            continue
        # One query a record, nothing kept in memory (none at all on a campaign's first run).
        known = None if run.fresh else run.ledger.recipient(run.campaign.id, item.customer_id)
        if known is not None and known.status == "published" and known.content_hash == task.content_hash:
            run.unchanged(task)
            continue
        if known is not None and known.paid_at is not None:
            task = replace(task, paid=True)
        feeder.add(task)
    feeder.drain()


def expire_campaign(campaign: Campaign, *, now: dt.datetime | None = None) -> int:
    """Take down the pages of recipients past their link lifetime and mark them expired; return how many."""
    from .publish import unpublish

    now = now or dt.datetime.now(dt.timezone.utc)
    ledger = Ledger(campaign.ledger)
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region)
    try:
        due = ledger.due_for_expiry(campaign.id, now)
        for recipient in due:
            unpublish(store, recipient.token)
            ledger.mark_expired(campaign.id, [recipient.customer_id])
    finally:
        ledger.close()
    return len(due)
