"""Where a campaign's work runs: in the driver, a local process pool, or a Dask cluster.

The driver (``jobs.run``) hands an executor chunks of recipients, each to be run
as ``fn(settings, chunk)``, and takes back whatever each chunk returned, in the
order chunks finish. Every executor runs a chunk *at least* once and reports it
exactly once: a worker that dies mid-chunk has the chunk run again elsewhere
(Dask reschedules it; the local pool is rebuilt and the chunk resubmitted), up
to :data:`ALLOWED_FAILURES` times, after which the chunk's exception is
reported. Running a chunk twice is safe because publishing is idempotent; only
the driver, which sees each chunk's result once, writes the ledger.

``open_executor("local", workers)`` gives the process pool (or, for one worker,
runs chunks in the driver itself); ``open_executor("tcp://host:8786")`` or
``open_executor("scheduler.json")`` connects to a ``dask.distributed`` scheduler.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from billcast.renderer import BillcastError

from .orphans import die_with_parent

ALLOWED_FAILURES = 3  # deaths of the worker running a chunk before the chunk is given up (Dask's default too)
DASK_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")

ChunkFn = Callable[[Any, Sequence[Any]], Any]


class ExecutorError(BillcastError):
    """The executor cannot be used: a scheduler that cannot be reached, a cluster with no workers."""

    exit_code = 9


@dataclass
class Done:
    """A chunk that has finished: what ``fn`` returned, or the exception that ended it for good."""

    chunk_id: int
    result: Any = None
    error: BaseException | None = None


class Executor(ABC):
    """Runs ``fn(settings, chunk)`` for each submitted chunk; hands back each chunk's outcome once."""

    name: str = "executor"

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many chunks can run at once now (worker processes x threads)."""

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Chunks submitted and not yet handed back by :meth:`next_done`."""

    @abstractmethod
    def submit(self, chunk_id: int, chunk: Sequence[Any]) -> None:
        """Start running ``fn(settings, chunk)``; its outcome comes back from :meth:`next_done` as ``chunk_id``."""

    @abstractmethod
    def next_done(self) -> list[Done]:
        """Block until at least one submitted chunk has finished; return every finished one (each once)."""

    def close(self) -> None:
        """Stop: cancel what has not started, release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs each chunk in the driver's own process as it is submitted: one worker, no pool."""

    name = "local"

    def __init__(self, fn: ChunkFn, settings: Any) -> None:
        self.fn, self.settings = fn, settings
        self._done: list[Done] = []

    @property
    def slots(self) -> int:
        return 1

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def submit(self, chunk_id: int, chunk: Sequence[Any]) -> None:
        self._done.append(Done(chunk_id, self.fn(self.settings, chunk)))

    def next_done(self) -> list[Done]:
        done, self._done = self._done, []
        return done


class LocalExecutor(Executor):
    """A pool of worker processes on this machine; a pool broken by a dead worker is rebuilt, its chunks rerun."""

    name = "local"

    def __init__(self, fn: ChunkFn, settings: Any, workers: int) -> None:
        self.fn, self.settings, self.workers = fn, settings, max(workers, 1)
        self._pool = self._new_pool()
        self._pending: dict[Future, tuple[int, Sequence[Any]]] = {}
        self._failures: dict[int, int] = {}

    @property
    def slots(self) -> int:
        return self.workers

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, chunk_id: int, chunk: Sequence[Any]) -> None:
        try:
            future = self._pool.submit(self.fn, self.settings, chunk)
        except BrokenProcessPool:
            self._rebuild()
            future = self._pool.submit(self.fn, self.settings, chunk)
        self._pending[future] = (chunk_id, chunk)

    def _new_pool(self) -> ProcessPoolExecutor:
        """Workers that end with this process, even when it is killed (``jobs.orphans``)."""
        return ProcessPoolExecutor(max_workers=self.workers, initializer=die_with_parent, initargs=(os.getpid(),))

    def _rebuild(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def next_done(self) -> list[Done]:
        if not self._pending:
            return []
        finished, _ = wait(self._pending, return_when=FIRST_COMPLETED)
        out: list[Done] = []
        broken: list[tuple[int, Sequence[Any]]] = []
        for future in finished:
            chunk_id, chunk = self._pending.pop(future)
            try:
                out.append(Done(chunk_id, future.result()))
            except BrokenProcessPool as exc:  # a worker process died (killed, out of memory): run it again
                self._failures[chunk_id] = self._failures.get(chunk_id, 0) + 1
                if self._failures[chunk_id] >= ALLOWED_FAILURES:
                    out.append(Done(chunk_id, error=exc))
                else:
                    broken.append((chunk_id, chunk))
            except Exception as exc:  # noqa: BLE001 - the chunk's own error, handed to the driver
                out.append(Done(chunk_id, error=exc))
        if broken:
            # Every chunk still pending on the broken pool fails the same way: collect and rerun them all.
            wait(self._pending)
            for future, (chunk_id, chunk) in list(self._pending.items()):
                if isinstance(future.exception(), BrokenProcessPool):
                    del self._pending[future]
                    broken.append((chunk_id, chunk))
            self._rebuild()
            for chunk_id, chunk in broken:
                self.submit(chunk_id, chunk)
        for done in out:
            self._failures.pop(done.chunk_id, None)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _same(value: Any) -> Any:
    """A task that returns its argument: the settings travel once, and a lost copy is recomputed."""
    return value


class DaskExecutor(Executor):
    """Chunks as tasks on a ``dask.distributed`` cluster; Dask reruns a task whose worker died."""

    name = "dask"
    REFRESH_SECONDS = 5.0

    def __init__(self, fn: ChunkFn, settings: Any, address: str, *, wait_seconds: float = 60.0,
                 retries: int = 1) -> None:
        try:
            import dask.config
            from dask.utils import parse_timedelta
            from distributed import Client, as_completed
        except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
            raise ExecutorError(f"--executor {address}: dask.distributed is not installed ({exc}); "
                                "pip install 'dask[distributed]'") from exc
        self.address, self.fn, self.retries = address, fn, retries
        # Dask's own setting (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT, default 30 s) bounds the wait for a scheduler.
        connect = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
        try:
            if address.startswith(DASK_SCHEMES):
                self.client = Client(address, timeout=connect, set_as_default=False)
            else:
                self.client = Client(scheduler_file=address, timeout=connect, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorError(f"--executor {address}: cannot reach the Dask scheduler: {exc}; start one with "
                                "`dask scheduler` (see docs/SCALING.md)") from exc
        try:
            self.client.wait_for_workers(1, timeout=wait_seconds)
        except TimeoutError:
            self.client.close()
            raise ExecutorError(f"--executor {address}: the scheduler has no workers after {wait_seconds:.0f} s; "
                                "start some with `dask worker ADDRESS --nthreads 1`") from None
        # The settings go out once, as a task that returns them: any worker can fetch them, and if every
        # copy is lost with its worker the scheduler simply runs the task again.
        self._settings = self.client.submit(_same, settings, pure=False, key=f"billcast-settings-{time.time_ns()}")
        self._completed = as_completed(loop=self.client.loop)
        self._ids: dict[str, int] = {}
        self._slots, self._seen = 1, 0.0

    @property
    def slots(self) -> int:
        now = time.monotonic()
        if now - self._seen > self.REFRESH_SECONDS:  # the cluster may grow or shrink during a run
            self._slots = max(sum(self.client.nthreads().values()), 1)
            self._seen = now
        return self._slots

    @property
    def in_flight(self) -> int:
        return len(self._ids)

    def submit(self, chunk_id: int, chunk: Sequence[Any]) -> None:
        future = self.client.submit(self.fn, self._settings, list(chunk), pure=False, retries=self.retries,
                                    key=f"billcast-chunk-{chunk_id}-{time.time_ns()}")
        self._ids[future.key] = chunk_id
        self._completed.add(future)

    def next_done(self) -> list[Done]:
        if not self._ids:
            return []
        out = []
        for future in self._completed.next_batch(block=True):
            chunk_id = self._ids.pop(future.key)
            if future.status == "finished":
                out.append(Done(chunk_id, future.result()))
            else:  # erred (its own exception, or KilledWorker after ALLOWED_FAILURES deaths) or cancelled
                try:
                    error = future.exception()
                except BaseException as exc:  # noqa: BLE001 - cancelled futures raise instead
                    error = exc
                out.append(Done(chunk_id, error=error or RuntimeError(f"chunk {future.status}")))
            future.release()
        return out

    def close(self) -> None:
        try:
            self.client.cancel(list(self._completed.futures) + [self._settings])
        finally:
            self.client.close()


def is_dask_address(spec: str) -> bool:
    return spec.startswith(DASK_SCHEMES) or spec.endswith(".json")


def open_executor(spec: str, fn: ChunkFn, settings: Any, *, workers: int = 1) -> Executor:
    """``local`` (a process pool of ``workers``; in-process for one), a Dask scheduler address, or a scheduler file."""
    if spec == "local":
        return InlineExecutor(fn, settings) if workers <= 1 else LocalExecutor(fn, settings, workers)
    if is_dask_address(spec):
        return DaskExecutor(fn, settings, spec)
    raise ExecutorError(f"--executor: expected 'local', a scheduler address like tcp://10.0.0.5:8786, or a "
                        f"scheduler file (.json), got {spec!r}")
