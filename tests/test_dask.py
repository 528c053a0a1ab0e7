"""Campaigns on a Dask cluster: the same outputs as the local pool, and exactly once when a worker is killed.

A real scheduler and two workers run as subprocesses on 127.0.0.1 (``dask
scheduler`` / ``dask worker`` from the virtualenv, which imports the project as
installed); the campaign is tiny (160x90, six records). Also here: the local
pool rerunning the chunks of a worker that died, the driver holding a bounded
number of records, and the segment cache shared through the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.cli import main
from billcast.jobs.executors import LocalExecutor
from billcast.jobs.ledger import Ledger
from billcast.jobs.store import NO_STORE, open_store

from test_campaign_run import GOOD, SECRET, good_records, objects, read_csv, write_campaign

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CAMPAIGN = "test-2026-11"


# --- a cluster of subprocesses ------------------------------------------------------------------------

@dataclasses.dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    tmp: list[Path]  # each worker's TMPDIR: its render folders are billcast-work/<hash16>-<pid>


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: ffmpeg children go too
    proc.wait(timeout=30)


@contextlib.contextmanager
def cluster(folder: Path, workers: int = 2) -> Iterator[Cluster]:
    """A scheduler and ``workers`` single-threaded workers (no nanny, so a killed worker stays dead)."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "BILLCAST_CACHE_DIR"}
    procs: list[subprocess.Popen] = []
    scheduler_file = folder / "scheduler.json"
    try:
        with (folder / "scheduler.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                 "--scheduler-file", scheduler_file], stdout=log, stderr=log, env=env, start_new_session=True))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip().endswith("}"):
            assert time.monotonic() < deadline and procs[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        tmps = []
        for i in range(workers):
            tmp = folder / f"worker{i}"
            tmp.mkdir()
            tmps.append(tmp)
            with (folder / f"worker{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(
                    [BIN / "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                     "--memory-limit", "0", "--local-directory", tmp / "dask", "--name", f"w{i}"],
                    stdout=log, stderr=log, env={**env, "TMPDIR": str(tmp)}, cwd=tmp, start_new_session=True))
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield Cluster(address, procs[0], procs[1:], tmps)
    finally:
        for proc in reversed(procs):
            _stop(proc)


# --- what a run leaves behind ------------------------------------------------------------------------

def ledger_rows(path: Path) -> list[dict]:
    """The campaign's recipients as the ledger holds them, without the times (which differ by run)."""
    ledger = Ledger(load_campaign(path).ledger)
    try:
        rows = [dataclasses.asdict(r) for r in ledger.recipients(CAMPAIGN)]
    finally:
        ledger.close()
    return [{k: v for k, v in row.items() if not k.endswith("_at")} for row in rows]


def local_files(folder: Path) -> dict[str, bytes]:
    root = folder / "out" / "recipients"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(folder: Path) -> dict:
    return {"objects": objects(folder), "manifest": read_csv(folder / "out" / "manifest.csv"),
            "ledger": ledger_rows(folder / "campaign.toml"), "files": local_files(folder)}


_LOCAL: dict[str, dict] = {}


@pytest.fixture
def local_run(tmp_path_factory) -> dict:
    """The campaign through the local pool: what every Dask run must equal.

    Run once per version of the code: content hashes cover the page templates and
    assets, so a reference made before someone edited one would differ for that reason alone.
    """
    from billcast.jobs.run import code_digest

    code = code_digest()
    if code not in _LOCAL:
        folder = tmp_path_factory.mktemp("local")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BILLCAST_TEST_SECRET", SECRET)
            mp.delenv("BILLCAST_CACHE_DIR", raising=False)
            path = write_campaign(folder, good_records())
            assert main(["run", str(path), "--quiet", "--workers", "2"]) == 0
        _LOCAL[code] = outputs(folder)
    return _LOCAL[code]


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("BILLCAST_TEST_SECRET", SECRET)
    monkeypatch.delenv("BILLCAST_CACHE_DIR", raising=False)


# --- the tests ---------------------------------------------------------------------------------------

def test_a_dask_run_publishes_what_a_local_run_does(local_run, tmp_path, capsys) -> None:
    path = write_campaign(tmp_path / "campaign", good_records())
    with cluster(tmp_path / "cluster") as c:
        assert main(["run", str(path), "--quiet", "--executor", c.address, "--chunk", "2"]) == 0
        assert "2 Dask worker threads" in capsys.readouterr().out
        got = outputs(tmp_path / "campaign")
        assert sorted(got["objects"]) == sorted(local_run["objects"])  # same keys: same links, same hashes
        assert got["objects"] == local_run["objects"]  # and the same bytes, videos included
        assert got["manifest"] == local_run["manifest"] and [m["status"] for m in got["manifest"]] == ["published"] * 6
        assert got["ledger"] == local_run["ledger"] and len(got["ledger"]) == len(GOOD)
        assert got["files"] == local_run["files"]  # email.html and qr.png, written by the driver
        # Run again on the cluster: the ledger knows everyone, nothing is rendered or written.
        assert main(["run", str(path), "--quiet", "--executor", c.address]) == 0
        assert [m["status"] for m in read_csv(tmp_path / "campaign" / "out" / "manifest.csv")] == ["unchanged"] * 6
        assert objects(tmp_path / "campaign") == local_run["objects"]


def _rendering(c: Cluster) -> tuple[int, Path] | None:
    """A worker that is rendering now, by its render folder: (its pid, the folder)."""
    for tmp in c.tmp:
        for folder in (tmp / "billcast-work").glob("*-*"):
            pid = int(folder.name.rsplit("-", 1)[1])
            if any(w.pid == pid and w.poll() is None for w in c.workers):
                return pid, folder
    return None


def test_a_worker_killed_midway_is_replaced_and_every_recipient_published_once(local_run, tmp_path) -> None:
    path = write_campaign(tmp_path / "campaign", good_records())
    pages = tmp_path / "campaign" / "store" / "r"
    with cluster(tmp_path / "cluster") as c:
        driver = subprocess.Popen([sys.executable, "-m", "billcast.cli", "run", str(path), "--quiet", "--executor",
                                   c.address, "--chunk", "1"], env={**os.environ, "BILLCAST_TEST_SECRET": SECRET},
                                  cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            found = None
            while found is None and time.monotonic() < deadline and driver.poll() is None:
                found = _rendering(c)
                time.sleep(0.01)
            assert found is not None, "no worker was seen rendering"
            pid, folder = found
            os.killpg(pid, signal.SIGKILL)  # the worker and its ffmpeg, mid-render
            killed = next(w for w in c.workers if w.pid == pid)
            killed.wait(timeout=30)
            assert folder.exists(), "the worker had finished that recipient before it was killed"
            assert len(list(pages.glob("*/index.html"))) < len(GOOD), "the run was over before the kill"
            output, _ = driver.communicate(timeout=120)
        finally:
            _stop(driver)
        assert driver.returncode == 0, output.decode()
        survivor = next(w for w in c.workers if w.pid != pid)
        assert survivor.poll() is None
    got = outputs(tmp_path / "campaign")
    assert [m["status"] for m in got["manifest"]] == ["published"] * len(GOOD)
    assert got["ledger"] == local_run["ledger"]  # one row per recipient, as an uninterrupted run leaves
    assert got["objects"] == local_run["objects"]  # nothing lost, no second version, no half page
    assert got["files"] == local_run["files"]


def test_an_unreachable_scheduler_is_an_error_not_a_hang(tmp_path, capsys) -> None:
    import dask.config

    path = write_campaign(tmp_path, good_records()[:1])
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main(["run", str(path), "--quiet", "--executor", "tcp://127.0.0.1:1"]) == 9
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


# --- the local pool survives a dead worker too -------------------------------------------------------

def _dies_once(marker: str, chunk: list[int]) -> list[int]:
    """Kills its own process the first time it sees chunk [2] (as SIGKILL or the OOM killer would)."""
    if chunk == [2] and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return [n * 10 for n in chunk]


def test_the_local_pool_reruns_the_chunks_of_a_worker_that_died(tmp_path) -> None:
    pool = LocalExecutor(_dies_once, str(tmp_path / "died"), workers=2)
    try:
        for n in range(6):
            pool.submit(n, [n])
        results = {}
        while pool.in_flight:
            for done in pool.next_done():
                assert done.error is None and done.chunk_id not in results
                results[done.chunk_id] = done.result
    finally:
        pool.close()
    assert (tmp_path / "died").exists()
    assert results == {n: [n * 10] for n in range(6)}  # every chunk once, the killed one included


# --- the driver holds a bounded number of records ----------------------------------------------------

def _instant(settings, tasks):
    from billcast.jobs.run import Outcome

    time.sleep(0.002 * (hash(tasks[0].token) % 5))  # chunks finish out of order
    return [Outcome(t.record.customer_id, "published", thumb_size=(160, 90), qr=b"") for t in tasks]


def test_the_driver_holds_a_bounded_window_of_records(tmp_path, monkeypatch) -> None:
    import billcast.jobs.run as run

    records = good_records()
    lines = [json.dumps({**records[i % len(records)], "customer_id": f"C-{i}"}) for i in range(600)]
    lines[100] = "{not json"
    path = write_campaign(tmp_path, [], bad_lines=lines)
    most = {"rows": 0}
    emit = run._Run.emit

    def counting_emit(self, seq, row):
        emit(self, seq, row)
        most["rows"] = max(most["rows"], len(self.rows))

    monkeypatch.setattr(run._Run, "emit", counting_emit)
    counts = run.run_campaign(load_campaign(path), secret=SECRET.encode(), workers=2, work_fn=_instant,
                              local_files=False, chunk=4)
    assert (counts.published, counts.refused, counts.chunk) == (599, 1, 4)
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    assert [m["customer_id"] for m in manifest] == [f"C-{i}" if i != 100 else "" for i in range(600)]
    assert 0 < most["rows"] <= (2 * 2 + 2) * 4  # the window: (2 chunks a worker + 2) x 4 records


# --- the shared segment cache ------------------------------------------------------------------------

def test_the_shared_cache_fetches_what_another_host_encoded(tmp_path) -> None:
    from billcast.jobs.shared_cache import SharedSegmentCache, segment_key

    store = open_store(f"file://{tmp_path / 'store'}")
    here, there = SharedSegmentCache(tmp_path / "a", store), SharedSegmentCache(tmp_path / "b", store)
    segment = tmp_path / "segment.mp4"
    segment.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(1000))
    key = "ab" * 32
    assert there.get(key) is None  # nobody has it
    here.put(key, segment)
    info = store.head(segment_key(key, "mp4"))
    assert info is not None and info.cache_control == NO_STORE and store.get(info.key) == segment.read_bytes()
    fetched = there.get(key)  # a local miss on the other host, found in the store
    assert fetched is not None and fetched.read_bytes() == segment.read_bytes()
    assert fetched.parent.parent == tmp_path / "b" and (there.hits, there.misses, there.fetched) == (1, 1, 1)
    store.delete([segment_key(key, "mp4")])
    assert there.get(key) == fetched  # the local tier now answers first
    assert there.get(key, "m4a") is None


def test_a_campaign_with_the_shared_cache_fills_the_store(tmp_path) -> None:
    path = write_campaign(tmp_path, good_records()[:2])
    assert main(["run", str(path), "--quiet", "--shared-cache"]) == 0
    store = open_store(load_campaign(path).store)
    cached = list(store.list("cache/segments/"))
    local = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert cached and len(cached) == len(local)
    assert all(store.head(k).cache_control == NO_STORE for k in cached)
