"""The driver of ``billcast run``: records in, in order; chunks out to an executor; outcomes recorded once.

The driver streams the input, refuses bad records (``errors.csv``), picks each
recipient's storyboard and variant, and skips whoever the ledger already shows
published with the same content hash. The rest go out in chunks to an executor
(``jobs.executors``: in the driver, a local process pool, or a Dask cluster)
whose workers (``worker``) render, build and publish; the driver alone writes
the ledger, the manifest and the recipients' local files (``outputs``). At most
a few chunks per worker are in flight and the manifest waits for at most that
many rows, so memory stays flat however long the input.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from billcast.microsite import SiteSettings, static_files
from billcast.renderer import default_cache_dir
from ..campaign import Campaign, Choice, ChoiceError, campaign_hash, choose
from ..executors import Executor, open_executor
from ..ledger import Ledger
from ..links import recipient_token
from ..plans import plan_view
from ..publish import publish_static, show_paid
from ..record_files import iter_records
from ..records import Record, RecordErrors, amount_due, record_values
from ..store import ObjectStore, open_store
from .digests import code_digest, is_unchanged, recipient_hash
from .experiment import Allocator
from .gate import Gate, Held
from .outputs import ERROR_FIELDS, MANIFEST_FIELDS, CsvFile, has_mail_files, recipient_urls, write_mail_files
from .worker import Outcome, Settings, Task, failed_all, work_chunk

STAGES = ("render", "build", "publish")
MAX_CHUNK = 8  # recipients a task: amortizes scheduling (see docs/SCALING.md), small enough to share the tail


@dataclass
class Counts:
    """What a run did: recipients by outcome, worker CPU seconds by stage, and how it ran."""

    published: int = 0
    unchanged: int = 0
    refused: int = 0
    failed: int = 0
    held_out: int = 0  # an experiment's holdout: recorded, never contacted
    waiting: int = 0  # an experiment's later waves
    suppressed: int = 0  # opted out, or disputing the debt: not contacted
    deferred: int = 0  # over the frequency cap: not contacted in this run
    withheld: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (status, storyboard, variant) -> n
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    executor: str = "local"
    slots: int = 1  # chunks that could run at once at the end of the run (workers x threads)
    chunk: int = 1  # recipients a chunk

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 1
        return 3 if self.refused else 0


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
    """One run's state in the driver: turns records into tasks and records every outcome, in input order."""

    campaign: Campaign
    ledger: Ledger
    settings: Settings
    secret: bytes
    run_digest: str
    manifest: CsvFile
    errors: CsvFile
    counts: Counts
    progress: Any
    log: Callable[[str], None]
    boards: dict[Path, bytes] = field(default_factory=dict)
    local_files: bool = True  # out/recipients/<id>/email.html and qr.png (off only for the driver benchmark)
    fresh: bool = False  # the ledger knew no recipient of the campaign when the run began: nothing to look up
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_row: int = 0
    allocator: Allocator | None = None  # the campaign's [experiment], if it has one
    placed: dict[str, dict[str, Any]] = field(default_factory=dict)  # customer_id -> experiment manifest columns
    gate: Gate | None = None  # opt-outs, disputes, the frequency cap and the send window
    store: ObjectStore | None = None  # where pages go: a page paid for during the run is put live as paid

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
        contact = {} if self.gate is None else {**self.gate.window(task.record), **self.gate.unsubscribe(task.token)}
        return {"customer_id": task.record.customer_id, **recipient_urls(self.settings.public_url, task.token),
                "storyboard": task.name, "variant": task.variant, "status": status,
                **self.placed.pop(task.record.customer_id, {}), **contact}

    def withhold(self, seq: int, record: Record, storyboard: str, variant: str, held: Held) -> None:
        """A recipient not contacted (suppressed, deferred): recorded with why, rendered and published never."""
        assert self.gate is not None
        self.ledger.record_withheld(campaign_id=self.campaign.id, customer_id=record.customer_id,
                                    storyboard=storyboard, variant=variant, status=held.status, reason=held.reason,
                                    send_after=held.send_after)
        setattr(self.counts, held.status, getattr(self.counts, held.status) + 1)
        group = (held.status, storyboard, variant)
        self.counts.withheld[group] = self.counts.withheld.get(group, 0) + 1
        window = self.gate.window(record, held.send_after) if held.send_after else {}
        self.emit(seq, {"customer_id": record.customer_id, "storyboard": storyboard, "variant": variant,
                        "status": held.status, "reason": held.reason, **window})
        self._tick()

    def set_aside(self, seq: int, customer_id: str, status: str, columns: dict[str, Any]) -> None:
        """A record the experiment covers but nothing is made for: held out, or of a later wave."""
        if status == "holdout":
            self.counts.held_out += 1
        else:
            self.counts.waiting += 1
        self.emit(seq, {"customer_id": customer_id, "status": status, **columns})
        self._tick()

    def _choose(self, seq: int, record: Record, values: dict[str, Any]) -> Choice | None | bool:
        """The experiment's arm, else the rules' storyboard; None when no rule holds, False when set aside."""
        if self.allocator is None or not self.allocator.covers(values):
            return choose(self.campaign, values, record.customer_id)
        later = self.allocator.later_wave(record.customer_id)
        if later is not None:
            self.set_aside(seq, record.customer_id, "waiting", {"wave": later})
            return False
        placed = self.allocator.place(record.customer_id, values)
        if placed.choice is None:
            self.set_aside(seq, record.customer_id, "holdout", placed.manifest())
            return False
        self.placed[record.customer_id] = placed.manifest()
        return placed.choice

    def task_for(self, seq: int, line: int, record: Record) -> Task | None:
        """The recipient's task, or None when refused (no rule, or an expression failed) or set aside."""
        values = record_values(record)
        try:
            choice = self._choose(seq, record, values)
        except ChoiceError as exc:
            self.refuse(seq, line, record.customer_id, exc.field or "rules", exc.message)
            return None
        if choice is False:
            return None
        if not isinstance(choice, Choice):
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
        if self.local_files and not has_mail_files(self.settings, task):
            write_mail_files(self.settings, task)
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
                write_mail_files(self.settings, task, outcome.thumb_size, outcome.qr)
            now = dt.datetime.now(dt.timezone.utc)
            debt = task.record.debt
            paid = self.ledger.record_published(
                campaign_id=self.campaign.id, customer_id=task.record.customer_id, token=task.token,
                storyboard=task.name, variant=task.variant, amount_due=task.amount_due, currency=task.record.currency,
                content_hash=task.content_hash, published_at=now,
                expires_at=now + dt.timedelta(days=self.campaign.link_days),
                plan_installments=debt.plan_offer.installments if debt and debt.plan_offer else None,
                days_past_due=debt.days_past_due if debt else None,
                plan_first_due=debt.plan_offer.first_due_date if debt and debt.plan_offer else None,
                locale=task.record.locale or self.campaign.default_locale)
            if paid and not task.paid and self.store is not None:  # paid while the page was being made
                show_paid(self.store, task.token)
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
                    code=code_digest(campaign.assets), worker_cache=remote and campaign.cache is None,
                    shared_cache=shared_cache, assets=campaign.assets, link_days=campaign.link_days)


def campaign_cache_dir(campaign: Campaign, default: Path | None | Literal["user"]) -> Path | None:
    """The segment cache: the campaign's ``cache``, else ``default`` (a folder; None for none; ``user``: the
    user's cache folder)."""
    if campaign.cache is not None:
        return campaign.cache
    return default_cache_dir() if default == "user" else default


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
                 local_files: bool = True, wave: int | None = None,
                 cache_dir: Path | None | Literal["user"] = "user") -> Counts:
    """Validate, render, build and publish every recipient of ``campaign``; return what happened.

    ``executor`` is ``local`` (a pool of ``workers`` processes) or a Dask scheduler's address
    (``tcp://host:8786``) or scheduler file; ``chunk`` the recipients a task (default: see
    :func:`chunk_size`); ``shared_cache`` shares the segment cache through the store
    (default: the campaign's ``shared_cache``); ``cache_dir`` is the segment cache when the
    campaign names none (a folder, None for none, ``user`` for the user's cache folder; a
    Dask worker elsewhere uses its own host's). ``work_fn`` and ``local_files`` are for
    benchmarks of the driver alone. ``wave`` runs an experiment's waves up to that one (default: all).
    Runs of one campaign take turns (the ledger's campaign lock): a second one waits for the
    first, then does only what is left.
    """
    say = log or (lambda text: print(text, file=sys.stderr))
    ledger = Ledger(campaign.ledger)
    with ledger.campaign_lock(campaign.id, waiting=lambda: say(
            f"{campaign.id}: another run of this campaign is under way; waiting for it to finish")):
        return _run_campaign(campaign, ledger, secret=secret, workers=workers, show_progress=show_progress, log=say,
                             executor=executor, chunk=chunk, shared_cache=shared_cache, work_fn=work_fn,
                             local_files=local_files, wave=wave, cache_dir=cache_dir)


def _run_campaign(campaign: Campaign, ledger: Ledger, *, secret: bytes, workers: int, show_progress: bool,
                  log: Callable[[str], None], executor: str, chunk: int | None, shared_cache: bool | None,
                  work_fn: WorkFn, local_files: bool, wave: int | None,
                  cache_dir: Path | None | Literal["user"]) -> Counts:
    if shared_cache is None:
        shared_cache = campaign.shared_cache
    remote = executor != "local"
    campaign.out.mkdir(parents=True, exist_ok=True)
    ledger.ensure_campaign(campaign.id, link_days=campaign.link_days, config_hash=campaign_hash(campaign))
    connections = 10 if remote else max(4 * workers, 10)
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region,
                       max_connections=connections)
    static_folder = publish_static(store, static_files())
    boards = {path: path.read_bytes() for path in campaign.storyboards}
    settings = _settings(campaign, connections=connections, cache_dir=campaign_cache_dir(campaign, cache_dir),
                         static_url="../../" + static_folder, remote=remote, shared_cache=shared_cache, boards=boards)
    counts = Counts()
    total = count_records(campaign.input)
    run = _Run(campaign, ledger, settings, secret, code_digest(campaign.assets) + campaign_hash(campaign),
               CsvFile(campaign.out / "manifest.csv", MANIFEST_FIELDS),
               CsvFile(campaign.out / "errors.csv", ERROR_FIELDS),
               counts, _progress(total, show_progress), log, boards=boards, local_files=local_files,
               fresh=not any(ledger.counts(campaign.id).values()), store=store)
    if campaign.experiment is not None:
        run.allocator = Allocator(campaign, ledger, wave or campaign.experiment.waves)
    run.gate = Gate(campaign, ledger, dt.datetime.now(dt.timezone.utc))
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
                outcomes = failed_all(tasks, message)
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
    for seq, (line, item) in enumerate(iter_records(run.campaign.input)):
        feeder.room(seq)
        if isinstance(item, RecordErrors):
            first = item.errors[0]
            for err in item.errors[1:]:
                run.errors.row({"line": err.line or line, "customer_id": err.customer_id or "",
                                "field": err.field or "", "message": err.message})
            run.refuse(seq, first.line or line, first.customer_id, first.field or "", first.message)
            continue
        assert run.gate is not None
        contact = run.gate.state(item)  # opt-outs, disputes and recent messages: one query a record
        held = run.gate.suppressed(item, contact) or run.gate.deferred(contact)
        # One query a record, nothing kept in memory (none at all on a campaign's first run).
        known = None if run.fresh else run.ledger.recipient(run.campaign.id, item.customer_id)
        if held is not None and (held.status == "suppressed" or known is None or known.status != "published"):
            run.withhold(seq, item, *run.gate.attribution(item), held)  # before an experiment places them
            continue
        task = run.task_for(seq, line, item)
        if task is None:
            continue
        if is_unchanged(known, task.content_hash):
            run.unchanged(task)
            continue
        if held is not None:  # deferred, and what they were sent before has changed: not sent again yet
            run.withhold(seq, item, task.name, task.variant, held)
            continue
        if known is not None and known.paid_at is not None:
            task = replace(task, paid=True)
        elif known is not None and known.plan_installments:
            task = replace(task, plan=plan_view(run.ledger.plan_for_token(known.token)))
        feeder.add(task)
    feeder.drain()
