"""The fast engine: same pictures as the reference, clean joins, and a segment cache that is only ever right."""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

import billcast.renderer.engine_ffmpeg as engine
import billcast.renderer.ffmpeg_graph as descriptions
from billcast.jobs import parse_record, record_values
from billcast.cli import main
from billcast.renderer import (Compositor, Drawer, EncodeError, SegmentCache, VideoSettings, default_fonts_dir,
                      load_storyboard, plan, render)
from billcast.renderer.encoding import X264_ANALYSIS
from billcast.renderer.segments import MIN_HOLD, frame_states, part_key, split_scene

from conftest import LINKS, ROOT, sample

pytestmark = pytest.mark.slow
SMALL = (320, 180)
FPS = 10
CUSTOMERS = {"bill_explainer": "IT-000123", "soft_reminder": "DE-000456", "firm_reminder": "US-001235"}


def timeline_for(name: str, customer: str, size=SMALL, fps=FPS, **changes):
    board = load_storyboard(ROOT / "storyboards" / f"{name}.yaml")
    obj = {**sample(customer), **changes}
    return plan(board, record_values(parse_record(obj)), LINKS, size=size, fps=fps)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a - b) ** 2).mean()
    return 99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """Every shipped storyboard rendered by both engines at a small size."""
    root = tmp_path_factory.mktemp("engines")
    cache = SegmentCache(root / "cache")
    done = {}
    for name, customer in CUSTOMERS.items():
        timeline = timeline_for(name, customer)
        render(timeline, root / name / "fast", cache=cache)
        render(timeline, root / name / "moviepy", engine="moviepy")
        done[name] = (timeline, root / name)
    return done


@pytest.mark.parametrize("name", sorted(CUSTOMERS))
def test_the_engines_agree_in_every_scene(both_engines, name: str) -> None:
    timeline, folder = both_engines[name]
    fast, reference = decoded(folder / "fast" / "video.mp4"), decoded(folder / "moviepy" / "video.mp4")
    assert len(fast) == len(reference) == timeline.frames
    for scene in timeline.scenes:
        for share in (0.05, 0.25, 0.5, 0.8, 0.99):  # during the animations and in the hold
            index = scene.start_frame + min(int(scene.frames * share), scene.frames - 1)
            value = psnr(fast[index], reference[index])
            assert value >= 35, (scene.id, index, round(value, 1))


def packet_times(path: Path) -> tuple[list[int], float, float, float]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(video) if p.size)
        tb = float(video.time_base)
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = float(audio.duration * audio.time_base) if audio else math.nan
        return pts, tb, audio_seconds, float(video.average_rate)


@pytest.mark.parametrize("name", sorted(CUSTOMERS))
def test_joins_neither_drop_nor_repeat_frames(both_engines, name: str) -> None:
    timeline, folder = both_engines[name]
    pts, tb, audio_seconds, rate = packet_times(folder / "fast" / "video.mp4")
    frame = 1 / timeline.fps
    assert rate == timeline.fps
    assert len(pts) == timeline.frames
    assert all(b > a for a, b in zip(pts, pts[1:]))  # strictly increasing
    steps = {round((b - a) * tb / frame, 6) for a, b in zip(pts, pts[1:])}
    assert steps == {1.0}  # every frame one frame after the last: no gap, no duplicate at any join
    duration = (pts[-1] - pts[0]) * tb + frame
    assert abs(duration - timeline.duration) < frame
    assert abs(audio_seconds - duration) <= frame


def test_parts_pair_into_segments() -> None:
    from billcast.renderer.segments import Part

    m, h = Part("motion", 0, 5), Part("hold", 5, 20)
    assert engine.units((m, h, Part("motion", 25, 3))) == [(m, h), (Part("motion", 25, 3), None)]
    assert engine.units((h, Part("hold", 25, 12))) == [(None, h), (None, Part("hold", 25, 12))]


def test_every_part_of_a_hold_shows_the_same_picture(both_engines) -> None:
    timeline, folder = both_engines["bill_explainer"]
    frames = decoded(folder / "fast" / "video.mp4")
    for scene in timeline.scenes:
        for part in split_scene(scene):
            if part.kind == "hold":
                first = scene.start_frame + part.start
                assert all(np.array_equal(frames[first], frames[first + i]) for i in range(part.frames))


def test_the_video_plays_everywhere(both_engines) -> None:
    _, folder = both_engines["soft_reminder"]
    with av.open(str(folder / "fast" / "video.mp4")) as container:
        video = container.streams.video[0].codec_context
        assert (video.name, video.profile, video.pix_fmt) == ("h264", "High", "yuv420p")
        assert container.streams.video[0].codec_context.has_b_frames == 0


# --- cutting scenes into parts ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CUSTOMERS))
def test_parts_cover_each_scene_once(name: str) -> None:
    timeline = timeline_for(name, CUSTOMERS[name], size=(1280, 720), fps=25)
    for scene in timeline.scenes:
        parts = split_scene(scene)
        assert sum(p.frames for p in parts) == scene.frames
        assert [p.start for p in parts] == [sum(q.frames for q in parts[:i]) for i in range(len(parts))]
        states = frame_states(scene)
        for part in parts:
            if part.kind == "hold":
                assert part.frames >= MIN_HOLD
                assert len(set(states[part.start:part.start + part.frames])) == 1
        assert any(p.kind == "hold" for p in parts)  # every shipped scene comes to rest


def keys(timeline, fonts="fonts", digest=lambda path: "same") -> list[str]:
    encoder = tuple(VideoSettings().segment_options(timeline.size, timeline.fps).items())
    return [part_key(scene, part, encoder=encoder, fonts=fonts, digest=digest)
            for scene in timeline.scenes for part in split_scene(scene)]


def test_the_intro_is_shared_and_the_rest_is_personal() -> None:
    maria = keys(timeline_for("bill_explainer", "IT-000123"))
    other = keys(timeline_for("bill_explainer", "IT-000123", first_name="Giulia"))
    german = keys(timeline_for("bill_explainer", "DE-000456"))
    intro = len(split_scene(timeline_for("bill_explainer", "IT-000123").scenes[0]))
    assert maria[:intro] == other[:intro] and maria[intro:] != other[intro:]
    assert maria[:intro] != german[:intro]  # the intro's text is translated


def test_keys_follow_content_not_places() -> None:
    timeline = timeline_for("bill_explainer", "IT-000123")
    assert keys(timeline) == keys(timeline)
    assert keys(timeline) != keys(timeline, fonts="other fonts")
    assert keys(timeline) != keys(timeline, digest=lambda path: "edited logo")
    moved = replace(timeline, scenes=tuple(replace(s, start_frame=s.start_frame + 5) for s in timeline.scenes))
    assert keys(moved) == keys(timeline)
    assert keys(timeline_for("bill_explainer", "IT-000123", fps=12)) != keys(timeline)


# --- the cache -------------------------------------------------------------------------------------

def test_a_second_customer_reuses_the_intro_once_per_language(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache")
    first = timeline_for("soft_reminder", "DE-000456", size=(160, 90))
    render(first, tmp_path / "a", cache=cache)
    misses = cache.misses
    second = timeline_for("soft_reminder", "DE-000456", size=(160, 90), first_name="Jürgen")
    render(second, tmp_path / "b", cache=cache)
    intro_parts = len(split_scene(second.scenes[0]))
    assert cache.hits >= intro_parts + 1  # the intro's parts, and the sound
    assert cache.misses - misses < len(keys(second))
    assert not (tmp_path / "a" / "segments").exists()


def test_a_damaged_segment_is_never_joined(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache")
    timeline = timeline_for("firm_reminder", "US-001235", size=(160, 90))
    render(timeline, tmp_path / "a", cache=cache)
    files = sorted((p for p in (tmp_path / "cache").rglob("*.mp4")), key=lambda p: p.stat().st_size)
    biggest = files[-1]
    whole = biggest.read_bytes()
    biggest.write_bytes(whole[: len(whole) // 2])  # truncated
    misses = cache.misses
    render(timeline, tmp_path / "b", cache=cache)
    assert cache.misses == misses + 1  # found damaged, so encoded again
    assert biggest.read_bytes() == whole  # the same content, back under its checksum
    assert len(decoded(tmp_path / "b" / "video.mp4")) == timeline.frames
    assert np.array_equal(decoded(tmp_path / "a" / "video.mp4")[-1], decoded(tmp_path / "b" / "video.mp4")[-1])


def test_a_failed_scene_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    cache = SegmentCache(tmp_path / "cache")
    real = engine.run

    def failing(argv: list[str]) -> None:
        if "-filter_complex" in argv and "overlay" in argv[argv.index("-filter_complex") + 1]:
            raise EncodeError("ffmpeg failed with exit code 1", argv=argv, stderr_tail="boom")
        real(argv)

    monkeypatch.setattr(engine, "run", failing)
    with pytest.raises(EncodeError):
        render(timeline_for("bill_explainer", "IT-000123", size=(160, 90)), tmp_path / "out", cache=cache)
    assert not list((tmp_path / "cache").rglob("*.mp4"))  # (an absent folder holds nothing either)
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _put_many(args: tuple[str, str, int]) -> str:
    root, src, _ = args
    return str(SegmentCache(root).put("a" * 64, src))


def test_many_processes_may_write_one_key(tmp_path: Path) -> None:
    src = tmp_path / "segment.mp4"
    src.write_bytes(os.urandom(200_000))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        paths = set(pool.map(_put_many, [(str(tmp_path / "cache"), str(src), i) for i in range(16)]))
    assert len(paths) == 1
    cache = SegmentCache(tmp_path / "cache")
    hit = cache.get("a" * 64)
    assert hit is not None and hit.read_bytes() == src.read_bytes()
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [hit.name]  # no temporary files


def test_least_recently_used_segments_go_first(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path / "cache", max_bytes=250_000)
    src = tmp_path / "s"
    for i, key in enumerate("abcd"):
        src.write_bytes(bytes([i]) * 100_000)
        cache.put(key * 64, src)
        os.utime(next((tmp_path / "cache").rglob(f"{key * 64}.*")), (1000 + i, 1000 + i))
    cache.get("a" * 64)  # touched: now the most recent
    assert cache.evict() > 0
    assert cache.size() <= 250_000 * 0.9
    assert cache.get("a" * 64) is not None and cache.get("d" * 64) is not None
    assert cache.get("b" * 64) is None


# --- what reaches ffmpeg ------------------------------------------------------------------------------

def test_customer_text_never_reaches_an_ffmpeg_argument(tmp_path: Path, monkeypatch) -> None:
    seen: list[list[str]] = []
    real = engine.run
    monkeypatch.setattr(engine, "run", lambda argv: (seen.append(argv), real(argv))[1])
    name = "%{pts} O'Brien: C:\\temp 'x' [0]"
    timeline = timeline_for("soft_reminder", "DE-000456", size=(160, 90), first_name=name)
    render(timeline, tmp_path / "out", cache=SegmentCache(tmp_path / "cache"))
    assert seen
    for argv in seen:
        for arg in argv:
            assert "O'Brien" not in arg and "%{pts}" not in arg and "Jürgen" not in arg
    assert len(decoded(tmp_path / "out" / "video.mp4")) == timeline.frames


def test_the_description_is_built_without_running_anything(tmp_path: Path) -> None:
    size, fps = (160, 90), 10
    options = VideoSettings().segment_options(size, fps)
    ov = descriptions.Overlay(3, 5, (descriptions.Anim("slide_in", 0.2, 0.7, (-40.0, 0.0)), descriptions.Anim("fade_in", 0, 0.5)),
                        (descriptions.Shifted(0, 1, "a.rgba", (10, 10)), descriptions.Shifted(1, 1, "b.rgba", (11, 10))))
    argv = descriptions.encode_command([descriptions.MotionJob("m.mp4", "base.rgb", 4, 12, (ov,), keyed=True),
                                  descriptions.MotionJob("s.mp4", "still.rgb", 30, 0, (), keyed=True)],
                                 size=size, fps=fps, options=options)
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.count("overlay=") == 2 and "enable=eq(mod(abs(3+round(" in graph
    assert "fade=alpha=1:d=0.5:st=0:type=in" in graph and "setpts=(N+4)*100" in graph
    assert "loop=loop=12:size=1:start=0" in graph  # twelve moving frames, then the hold's keyframe
    assert argv.count("-crf") == 2 and "expr:eq(n,12)" in argv and "expr:eq(n,0)" in argv
    assert not any(a.endswith(".rgb") and a in graph for a in argv)  # inputs are files, never filter text
    repeat = descriptions.repeat_command({30: "r.mp4"}, "grey.rgb", size=size, fps=fps, options=options)
    assert "noise=drop=eq(n\\,0)" in repeat and repeat[repeat.index("-g") + 1] == "32"
    cut = descriptions.cut_command("run.mp4", {12: "a.mp4"})
    assert "-copyinkf" in cut and cut[cut.index("-frames:v") + 1] == "12" and cut[cut.index("-c") + 1] == "copy"
    listing = descriptions.concat_listing([Path("/c/it's.mp4")])
    assert "file '/c/it'\\''s.mp4'" in listing


def test_a_layer_is_overlaid_only_on_the_frames_it_shows_on() -> None:
    Span = descriptions.Span
    assert descriptions.spans_of([0, 0.25, 0.75, 1, 1], 1) == (Span(1, 3, True), Span(3, 5, False))  # fades in, stays
    assert descriptions.spans_of([0.8, 0.8, 0.4, 0], 0.8) == (Span(0, 2, False), Span(2, 3, True))  # fades out
    assert descriptions.spans_of([1, 1, 1], 1) == (Span(0, 3, False),)
    assert descriptions.spans_of([0, 0], 1) == ()


def test_a_job_overlays_each_layer_from_when_it_appears(tmp_path: Path) -> None:
    timeline = timeline_for("bill_explainer", "IT-000123")
    comp = Compositor(timeline, Drawer(default_fonts_dir()))
    greeting = timeline.scenes[1]
    motion, hold = engine.units(split_scene(greeting))[0]
    job = engine.FastEncoder(comp, tmp_path, VideoSettings(), None)._job(greeting, motion, hold, tmp_path / "g.mp4",
                                                                         "pic")
    name, period = job.overlays  # the logo does not move, and nothing moves over it: it is in the base picture
    Span = descriptions.Span
    assert name.spans == (Span(1, 5, True), Span(5, job.encoded, False))  # fades in over 0.5 s, slides on
    assert period.spans == (Span(7, 12, True), Span(12, job.encoded, False))  # appears after 0.6 s, for 0.6 s
    size, fps = timeline.size, timeline.fps
    graph = descriptions.encode_command([job], size=size, fps=fps, options=VideoSettings().segment_options(size, fps))
    graph = graph[graph.index("-filter_complex") + 1]
    assert graph.count("overlay=") == 6 and graph.count("eof_action=pass") == 6  # two parities of the name
    assert graph.count("fade=") == 3  # fades only on the frames that fade
    assert graph.count("format=yuva420p") == 3  # each sprite read and converted once, then split
    assert "loop=loop=4:size=1:start=0,settb=expr=1/1000,setpts=(N+7)*100,fade=alpha=1" in graph
    assert f"loop=loop={job.encoded - 13}:size=1:start=0,settb=expr=1/1000,setpts=(N+12)*100[" in graph


def test_spans_change_no_pixel(tmp_path: Path) -> None:
    timeline = timeline_for("bill_explainer", "IT-000123", size=(160, 90))
    comp = Compositor(timeline, Drawer(default_fonts_dir()))
    encoder = engine.FastEncoder(comp, tmp_path, VideoSettings(), None)
    total = timeline.scenes[2]  # fades with delays, slides, layers that settle while others still move
    motion, hold = engine.units(split_scene(total))[0]
    job = encoder._job(total, motion, hold, tmp_path / "spans.mp4", "pic")
    assert all(ov.spans and ov.spans[0].first > 0 for ov in job.overlays[1:])
    whole = replace(job, out=str(tmp_path / "whole.mp4"),
                    overlays=tuple(replace(ov, spans=None) for ov in job.overlays))
    engine.run(descriptions.encode_command([job, whole], size=encoder.size, fps=encoder.fps, options=encoder.options,
                                     exe=encoder.exe))
    spans, every_frame = decoded(Path(job.out)), decoded(Path(whole.out))
    assert len(spans) == len(every_frame) == job.encoded
    assert all(np.array_equal(a, b) for a, b in zip(spans, every_frame))


def test_filter_text_is_escaped_as_the_graph_syntax_reads_it() -> None:
    assert descriptions._filter("overlay", x="a,b:c", eval="init") == "overlay=eval=init:x=a\\,b\\\\:c"
    assert descriptions._filter("setpts", "(N+4)*100") == "setpts=(N+4)*100"


def test_segments_of_other_x264_analysis_are_other_segments() -> None:
    timeline = timeline_for("bill_explainer", "IT-000123")
    options = VideoSettings().segment_options(timeline.size, timeline.fps)
    plain = VideoSettings(analysis="").segment_options(timeline.size, timeline.fps)
    assert options["x264-params"].endswith(X264_ANALYSIS) and plain["x264-params"] == "stitchable=1:ipratio=1.8"
    scene, part = timeline.scenes[1], split_scene(timeline.scenes[1])[0]
    assert (part_key(scene, part, encoder=tuple(options.items()), fonts="f", digest=str)
            != part_key(scene, part, encoder=tuple(plain.items()), fonts="f", digest=str))
    reference = VideoSettings().x264_params(timeline.size, timeline.fps)  # the MoviePy engine skips the same
    assert reference[reference.index("-x264-params") + 1] == X264_ANALYSIS


def test_segments_with_other_parameters_are_refused(tmp_path: Path) -> None:
    timeline = timeline_for("firm_reminder", "US-001235", size=(160, 90))
    render(timeline, tmp_path / "a", cache=SegmentCache(tmp_path / "c1"))
    render(timeline, tmp_path / "b", cache=SegmentCache(tmp_path / "c2"), settings=VideoSettings(preset="ultrafast"))
    one = next((tmp_path / "c1").rglob("*.mp4"))
    other = next((tmp_path / "c2").rglob("*.mp4"))
    engine.check_joinable([one, one])
    with pytest.raises(EncodeError, match="other parameters"):
        engine.check_joinable([one, other])


def test_cli_uses_the_cache_named_by_the_environment(tmp_path: Path, write_record, monkeypatch) -> None:
    monkeypatch.setenv("BILLCAST_CACHE_DIR", str(tmp_path / "envcache"))
    record = write_record(sample("US-001235"))
    assert main(["render", str(ROOT / "storyboards" / "firm_reminder.yaml"), "--customer", str(record),
                 "--out", str(tmp_path / "out"), "--size", "160x90", "--fps", "10"]) == 0
    assert list((tmp_path / "envcache").rglob("*.mp4"))
    shutil.rmtree(tmp_path / "out")
    assert main(["render", str(ROOT / "storyboards" / "firm_reminder.yaml"), "--customer", str(record),
                 "--out", str(tmp_path / "out"), "--size", "160x90", "--fps", "10", "--cache", "off"]) == 0
    assert (tmp_path / "out" / "video.mp4").is_file()
