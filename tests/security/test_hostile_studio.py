"""The studio as a careless or malicious author (or a page on another site) uses it.

Every POST needs the session's CSRF token and a same-origin request; a storyboard text that would
compute without bound is answered with its line and field, in the studio as in ``billcast check``. A
text that is valid but expensive meets the studio's worker limits (time, memory, a bounded queue) and is
a problem in the editor, while the public side keeps answering; a killed worker is replaced, the
service's death takes its workers along, and preview videos are shared by the service's processes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image

from billcast.service import health, studio_web

from conftest import ROOT
from test_orphaned_workers import killed_leaves_none, reap
from test_studio import Studio, make_app


@pytest.fixture
def st(tmp_path) -> Iterator[Studio]:
    made = Studio(make_app(tmp_path), tmp_path)
    yield made
    made.close()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Callable[..., Studio]]:
    """Studios made with the given studio settings (their workers ended after the test), with /healthz."""
    made: list[Studio] = []

    def make(**settings: Any) -> Studio:
        app = make_app(tmp_path, **settings)
        app.register_blueprint(health.blueprint)
        made.append(Studio(app, tmp_path))
        return made[-1]

    yield make
    for studio in made:
        studio.close()


def post_routes(st: Studio) -> list[str]:
    paths = []
    for rule in st.app.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and rule.rule.startswith("/studio"):
            paths.append(re.sub(r"<[^>]+>", "bill_explainer", rule.rule))
    return sorted(paths)


def test_every_studio_post_refuses_a_forged_or_missing_csrf_token_and_other_origins(st: Studio) -> None:
    paths = post_routes(st)
    assert paths, "the studio has POST routes"
    before = st.live()
    body = {"text": before.replace("Hello", "Pwned"), "t": 1.0}
    for path in paths:
        assert st.client.post(path, json=body).status_code == 403, path
        assert st.client.post(path, json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403, path
        assert st.post(path, body, Origin="https://evil.example").status_code == 403, path
        assert st.post(path, body, Origin="null").status_code == 403, path
    assert st.live() == before  # nothing was saved


def test_a_studio_post_without_the_admin_token_is_refused(st: Studio) -> None:
    anonymous = st.app.test_client()
    for path in post_routes(st):
        assert anonymous.post(path, json={"text": "x"}, headers={"X-CSRF-Token": st.csrf}).status_code in (302, 401,
                                                                                                         403), path


@pytest.mark.parametrize("template", ['{{ "x"|center(10**9) }}', '{{ "%999999999d"|format(1) }}',
                                      '{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}'])
def test_a_text_that_computes_without_bound_is_an_answer_not_a_hang(st: Studio, template: str) -> None:
    text = st.live().replace('greeting: "Hello {{ first_name }},"', "greeting: '" + template.replace("'", "''") + "'")
    assert text != st.live()
    response = st.post("/studio/bill_explainer/frame", {"text": text, "t": 1.0})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "translations.en.greeting" and "allowed" in error["message"]


# --- the worker processes' limits -------------------------------------------------------------------------

BURN = "{% for i in range(9999) %}{% if i * 3 > i + 99999 %}x{% endif %}{% endfor %}ok"


def burning(scenes: int = 1) -> str:
    """A valid storyboard whose check legitimately takes seconds (2-3 s a scene): every text runs a loop the
    sandbox allows (10,000 iterations), 40 times in a scene."""
    lines = ["name: bill_explainer", "size: [320, 180]", "default_language: en", "purpose: bill",
             f"description: &burn '{BURN}'", "scenes:"]
    for scene in range(scenes):
        lines += [f"  - id: busy{scene}", "    duration: 1", "    layers:"]
        lines += ["      - {kind: text, text: *burn, box: [0, 0, 100, 40]}"] * 40
    return "\n".join(lines) + "\n"


def pool_of(st: Studio) -> Any:
    with st.app.app_context():
        return studio_web.studio().pool()


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def wait_until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_a_check_that_takes_too_long_is_a_problem_while_the_public_side_answers(limited) -> None:
    st = limited(studio_check_seconds=1)
    pool = pool_of(st)
    thread, out = in_background(lambda: st.validate(burning()))
    wait_until(lambda: pool.running() == 1)
    health_client = st.app.test_client()
    assert health_client.get("/healthz").status_code == 200
    assert pool.running() == 1  # the public side answered while the studio's job was still running
    thread.join(60)
    body = out[0].get_json()
    assert out[0].status_code == 200 and body["ok"] is False
    [problem] = body["errors"]
    assert problem["message"] == "checking took longer than 1 s: simplify the template or the scenes"
    assert problem["text"] == "storyboard: " + problem["message"] and problem["field"] == "storyboard"
    again = st.validate(st.live())  # the worker was killed; a new one checks the next text
    assert again.status_code == 200 and again.get_json()["ok"], again.get_json()
    worker = pool.pids()
    saved = st.save(burning())
    assert saved.status_code == 422 and "draft" in saved.get_json()  # never made live
    assert saved.get_json()["errors"] == [problem]
    assert pool.pids() == worker  # the same text is not tried again: its answer is remembered


def test_a_storyboard_that_needs_too_much_memory_is_a_problem(limited) -> None:
    st = limited(studio_memory_mb=512)
    huge = st.root / "assets" / "images" / "huge.png"
    text = st.live()
    assert st.validate(text).get_json()["ok"]  # the assets folder is made, and a normal check fits in 512 MB
    Image.new("RGB", (8000, 8000), "#0E4D64").save(huge)  # 64 megapixels: a few hundred kB on disk
    layer = "      - {kind: image, src: images/huge.png, box: [0, 0, 1280, 720]}\n"
    text = text.replace("    layers:\n", "    layers:\n" + layer, 1)
    response = st.post("/studio/bill_explainer/frame", {"text": text, "t": 1.0})
    assert response.status_code == 422, response.data[:200]
    [problem] = response.get_json()["errors"]
    assert problem["message"] == "checking used more than 512 MB of memory: simplify the template or the scenes"


def test_a_full_queue_answers_503_with_retry_after(limited) -> None:
    st = limited(studio_check_seconds=3, studio_workers=1, studio_queue=0)
    pool = pool_of(st)
    thread, out = in_background(lambda: st.validate(burning(scenes=4)))
    wait_until(lambda: pool.running() == 1)
    refused = st.post("/studio/bill_explainer/frame", {"text": st.live(), "t": 1.0})
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"].startswith("The studio is busy")
    thread.join(60)
    assert out[0].get_json()["errors"][0]["message"].startswith("checking took longer than 3 s")


def test_a_killed_worker_is_a_problem_and_the_next_check_gets_a_new_one(limited) -> None:
    st = limited(studio_check_seconds=60)
    pool = pool_of(st)
    assert st.validate(st.live()).get_json()["ok"]
    [first] = pool.pids()
    thread, out = in_background(lambda: st.validate(burning(scenes=4)))
    wait_until(lambda: pool.running() == 1)
    time.sleep(0.2)
    os.kill(first, signal.SIGKILL)
    thread.join(60)
    [problem] = out[0].get_json()["errors"]
    assert "its worker process ended unexpectedly" in problem["message"]
    assert st.validate(st.live()).get_json()["ok"]
    [second] = pool.pids()
    assert second != first


DRIVER = """
import sys, time
sys.path[:0] = [{tests!r}]
from test_studio import Studio, make_app
from billcast.service import studio_web
st = Studio(make_app(__import__("pathlib").Path({root!r})), __import__("pathlib").Path({root!r}))
assert st.validate(st.live()).get_json()["ok"]
with st.app.app_context():
    print(*studio_web.studio().pool().pids(), flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_the_studios_workers_end_when_the_service_is_killed(tmp_path: Path) -> None:
    script = DRIVER.format(tests=str(ROOT / "tests"), root=str(tmp_path))
    driver = subprocess.Popen([sys.executable, "-P", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=tmp_path)
    workers: list[psutil.Process] = []
    try:
        line = driver.stdout.readline().decode()
        assert line.strip(), driver.stderr.read().decode()[-2000:]
        workers = [psutil.Process(int(pid)) for pid in line.split()]
        assert workers and all(w.ppid() == driver.pid for w in workers)
        killed_leaves_none(driver, workers, "studio workers")
    finally:
        reap(driver, workers)


@pytest.mark.slow
def test_a_preview_video_started_in_one_service_process_is_answered_by_another(limited) -> None:
    one, other = limited(), limited()
    text = one.live("soft_reminder")
    started = one.post("/studio/soft_reminder/video", {"text": text, "customer": one.sample("Michael")})
    assert started.status_code == 202
    job = started.get_json()
    seen = other.client.get(job["status_url"])
    assert seen.status_code == 200 and seen.get_json()["job"] == job["job"]
    wait_until(lambda: other.client.get(job["status_url"]).get_json()["status"] != "rendering", 120)
    done = other.client.get(job["status_url"]).get_json()
    assert done["status"] == "done", done
    mp4 = other.client.get(done["files"]["video.mp4"])
    assert mp4.status_code == 200 and mp4.data[4:8] == b"ftyp"
    again = other.post("/studio/soft_reminder/video", {"text": text, "customer": other.sample("Michael")})
    assert again.get_json()["job"] == job["job"] and again.get_json()["status"] == "done"
