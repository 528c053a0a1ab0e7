"""The studio's preview renders at their limits: a render that runs out of time, a full render queue, a
render worker killed mid-render, and a render left behind by a service process that died.

A render is a worker process and the ffmpeg processes it starts, in one process group: whatever ends a
render must end all of them, tell the page why, and leave the studio able to render the next one. The
status of a render lives on disk, so every service process sharing the studio cache must say the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image

from billcast.service import studio_web
from billcast.service.studio_worker import PREVIEWS

from conftest import ROOT
from test_hostile_studio import limited, wait_until  # noqa: F401  (limited: a fixture)
from test_orphaned_workers import reap
from test_studio import Studio

pytestmark = pytest.mark.slow

NOISE = "images/noise.png"


def storyboard(scenes: int = 1, seconds: float = 1, fps: int = 5, size: tuple[int, int] = (160, 90),
               noise: bool = False, greeting: str = "Hello") -> str:
    """A storyboard to render. Tiny by default (160x90, one second at 5 fps: a fraction of a second); with
    ``noise``, every frame of every scene is a full-frame picture of noise fading in over the whole scene,
    so each of its frames is encoded anew (minutes of encoding at 640x360 and 60 fps)."""
    lines = ["name: bill_explainer", "purpose: bill", f"size: [{size[0]}, {size[1]}]", f"fps: {fps}",
             "default_language: en", "scenes:"]
    for scene in range(scenes):
        lines += [f"  - id: s{scene}", f"    duration: {seconds}", "    background: {color: '#0E4D64'}", "    layers:"]
        if noise:
            lines += ["      - kind: image", f"        src: {NOISE}", f"        box: [0, 0, {size[0]}, {size[1]}]",
                      "        fit: stretch", f"        animate: [{{type: fade_in, duration: {seconds}}}]"]
        lines += ["      - kind: text", f"        text: '{greeting} {{{{ first_name }}}} ({scene + 1})'",
                  "        box: [8, 8, 140, 40]"]  # no two scenes alike: the segment cache makes none for another
    return "\n".join(lines) + "\n"


def slow_storyboard(greeting: str = "Hello") -> str:
    return storyboard(scenes=6, seconds=30, fps=60, size=(1280, 720), noise=True, greeting=greeting)


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this process and of the workers it starts: what a render leaves there is seen."""
    folder = tmp_path / "temporary"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def noisy(limited, temporary: Path) -> Any:  # noqa: F811
    """Studios made with the given settings, whose assets hold a 1280x720 picture of noise."""

    def make(**settings: Any) -> Studio:
        st = limited(**settings)
        path = st.root / "assets" / NOISE
        if not path.exists():
            Image.frombytes("RGB", (1280, 720), os.urandom(1280 * 720 * 3)).save(path)
        return st

    return make


def renders_of(st: Studio) -> Any:
    with st.app.app_context():
        return studio_web.studio().renders()


def start(st: Studio, text: str) -> Any:
    return st.post("/studio/bill_explainer/video", {"text": text})


def finished(st: Studio, job: dict[str, Any], seconds: float = 120) -> dict[str, Any]:
    """The job's status once it is no longer rendering."""
    wait_until(lambda: st.client.get(job["status_url"]).get_json()["status"] != "rendering", seconds)
    return st.client.get(job["status_url"]).get_json()


def rendered(st: Studio, text: str) -> dict[str, Any]:
    """A render of ``text`` started and finished: it must be done, with a video to play."""
    started = start(st, text)
    assert started.status_code == 202, started.get_data(as_text=True)
    done = finished(st, started.get_json())
    assert done["status"] == "done" and done["error"] is None, done
    assert st.client.get(done["files"]["video.mp4"]).data[4:8] == b"ftyp"
    return done


def ffmpeg_of(worker: int) -> list[psutil.Process]:
    """The ffmpeg processes the render worker ``worker`` runs now."""
    try:
        return [p for p in psutil.Process(worker).children(recursive=True) if "ffmpeg" in p.name()]
    except psutil.NoSuchProcess:
        return []


def group(pgid: int) -> list[psutil.Process]:
    """The processes of process group ``pgid`` still running (a zombie has ended)."""
    alive = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except (OSError, psutil.NoSuchProcess):
            pass
    return alive


def rendering_worker(st: Studio, job: dict[str, Any]) -> tuple[int, list[psutil.Process]]:
    """The render worker of ``job`` once ffmpeg runs under it, and those ffmpeg processes."""
    renders = renders_of(st)
    seen: dict[int, list[psutil.Process]] = {}

    def encoding() -> bool:  # the ffmpeg processes are seen once, as they run (each lasts for a few parts)
        seen.clear()
        seen.update({pid: ffmpeg_of(pid) for pid in renders.pool.pids()})
        return any(seen.values()) or st.client.get(job["status_url"]).get_json()["status"] != "rendering"

    wait_until(encoding)
    [(worker, encoders)] = seen.items()
    assert encoders, f"the render ended before ffmpeg ran: {st.client.get(job['status_url']).get_json()}"
    return worker, encoders


def test_a_render_that_takes_too_long_fails_with_its_reason_and_leaves_no_process(noisy, temporary: Path) -> None:
    st = noisy(studio_render_seconds=1)
    rendered(st, storyboard())  # the render worker is up, and a tiny render fits in a second
    started = start(st, slow_storyboard())
    assert started.status_code == 202
    worker, encoders = rendering_worker(st, started.get_json())
    failed = finished(st, started.get_json())
    assert failed["status"] == "failed"
    assert failed["error"] == "rendering the preview took longer than 1 s: simplify the template or the scenes"
    assert "files" not in failed and st.client.get(f"{failed['status_url']}/video.mp4").status_code == 404
    wait_until(lambda: not group(worker), 10)  # the worker and every ffmpeg it ran: killed with their group
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in encoders)
    assert not list(temporary.iterdir())  # nor is anything the killed render wrote left behind
    again = rendered(st, storyboard(greeting="Hi"))  # a new worker renders the next one
    assert renders_of(st).pool.pids() != [worker] and again["job"] != failed["job"]


def test_a_full_render_queue_answers_503_with_retry_after_and_nothing_hangs(noisy) -> None:
    st = noisy(studio_render_seconds=30, studio_queue=1)
    renders = renders_of(st)
    running = start(st, storyboard(greeting="One")).get_json()
    wait_until(lambda: renders.pool.running() == 1 and renders.pool.pids())
    [worker] = renders.pool.pids()
    os.kill(worker, signal.SIGSTOP)  # the render holds its worker for as long as the test needs
    try:
        waiting = start(st, storyboard(greeting="Two"))
        assert waiting.status_code == 202 and waiting.get_json()["status"] == "rendering"  # queued
        refused = start(st, storyboard(greeting="Three"))
        assert refused.status_code == 503 and refused.mimetype == "application/json"
        body = refused.get_json()
        assert int(refused.headers["Retry-After"]) == body["retry_after"] >= 1 and body["busy"] is True
        assert body["error"] == f"The studio is busy with other checks and previews: try again in {body['retry_after']} s."
        assert st.validate(st.live()).get_json()["ok"]  # checks have their own workers: still answered
        assert start(st, storyboard(greeting="One")).get_json()["job"] == running["job"]  # found, not queued
    finally:
        os.kill(worker, signal.SIGCONT)
    for job in (running, waiting.get_json()):
        assert finished(st, job)["status"] == "done"
    rendered(st, storyboard(greeting="Three"))  # the queue is free again


def test_a_render_worker_killed_mid_render_is_a_failure_every_service_process_reports(noisy, temporary: Path) -> None:
    st, other = noisy(studio_render_seconds=60), noisy()
    started = start(st, slow_storyboard()).get_json()
    worker, encoders = rendering_worker(st, started)
    os.kill(worker, signal.SIGKILL)
    failed = finished(st, started)
    assert failed["status"] == "failed"
    assert failed["error"] == ("rendering the preview stopped: its worker process ended unexpectedly and was "
                               "started again; try again")
    wait_until(lambda: not group(worker), 10)  # its ffmpeg went with it
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in encoders)
    assert not list(temporary.iterdir())
    assert other.client.get(started["status_url"]).get_json() == failed
    rendered(st, storyboard())


DRIVER = """
import sys, time
sys.path[:0] = [{tests!r}]
from pathlib import Path
from billcast.service import studio_worker
from test_studio import Studio, make_app
studio_worker.STALE_GRACE = 0  # the deadline is the render's own limit: a test need not wait 30 s more
st = Studio(make_app(Path({root!r}), studio_render_seconds=1, studio_queue=0), Path({root!r}))
started = st.post("/studio/bill_explainer/video", {{"text": {text!r}}}).get_json()
print(started["status_url"], flush=True)
time.sleep(600)
"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    made: list[subprocess.Popen] = []
    yield made
    for process in made:
        reap(process, [])


def test_a_render_whose_service_process_died_is_failed_past_its_deadline_in_every_process(noisy, tmp_path: Path,
                                                                                          driver) -> None:
    one, other = noisy(), noisy()  # two service processes' apps sharing the studio cache with the driver
    script = DRIVER.format(tests=str(ROOT / "tests"), root=str(tmp_path), text=slow_storyboard())
    service = subprocess.Popen([sys.executable, "-P", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=tmp_path)
    driver.append(service)
    status_url = service.stdout.readline().decode().strip()
    assert status_url, service.stderr.read().decode()[-2000:]
    assert one.client.get(status_url).get_json()["status"] == "rendering"
    wait_until(lambda: any("ffmpeg" in p.name() for p in psutil.Process(service.pid).children(recursive=True)))
    workers = [p.pid for p in psutil.Process(service.pid).children() if "python" in p.name().lower()]
    service.send_signal(signal.SIGKILL)  # mid-render: no one is left to write how it ended
    service.wait(10)
    for worker in workers:  # its workers went with it, and the render's ffmpeg with them
        wait_until(lambda: not group(worker), 10)
    job = status_url.rsplit("/", 1)[1]
    assert (one.root / "instance" / "studio-segments" / PREVIEWS / job / "status.json").read_text().count(
        '"status": "rendering"') == 1  # left on disk as it was
    failed = finished(one, {"status_url": status_url}, 60)
    assert failed["status"] == "failed"
    assert failed["error"] == "the render stopped: the service process running it ended; start it again"
    assert other.client.get(status_url).get_json() == failed
