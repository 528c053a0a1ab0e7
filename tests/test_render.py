"""Whole renders, checked by what the container says, not by bytes; and failures that leave nothing."""

from __future__ import annotations

import html
import json
import math
import shutil
import struct
from pathlib import Path

import av
import numpy as np
import pytest
import webvtt
from PIL import Image

from billcast.jobs import parse_record, record_values
from billcast.cli import main
from billcast.renderer import AssetError, load_storyboard, plan, preview, render

from conftest import DATA, LINKS, ROOT, sample
from test_storyboard import BASE

pytestmark = pytest.mark.slow
SIZE = (160, 90)
FPS = 10


def top_level_atoms(path: Path) -> list[str]:
    atoms = []
    with path.open("rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            atoms.append(kind.decode("ascii", "replace"))
            fh.seek(size - 8, 1)
    return atoms


@pytest.fixture(scope="module", params=[("bill_explainer", "fast"), ("soft_reminder", "fast"),
                                        ("bill_explainer", "moviepy")], ids="-".join)
def rendered(request, tmp_path_factory):
    name, engine = request.param
    board = load_storyboard(ROOT / "storyboards" / f"{name}.yaml")
    customer = "IT-000123" if name == "bill_explainer" else "EG-000790"
    timeline = plan(board, record_values(parse_record(sample(customer))), LINKS, size=SIZE, fps=FPS)
    out = tmp_path_factory.mktemp(name) / "out"
    result = render(timeline, out, engine=engine)
    return board, timeline, out, result


def test_all_outputs_are_written(rendered) -> None:
    _, _, out, result = rendered
    assert sorted(p.name for p in out.iterdir()) == sorted(result.files)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_video_stream(rendered) -> None:
    board, timeline, out, _ = rendered
    with av.open(str(out / "video.mp4")) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.codec_context.profile in ("High", "Main", "Constrained Baseline")
        assert (video.codec_context.width, video.codec_context.height) == SIZE
        assert video.average_rate == FPS
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(frames - timeline.frames) <= 1
    assert abs(frames / FPS - board.duration) <= 1 / FPS


def test_audio_stream_matches_the_video(rendered) -> None:
    board, timeline, out, _ = rendered
    with av.open(str(out / "video.mp4")) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        audio_seconds = float(audio.duration * audio.time_base)
    assert abs(audio_seconds - board.duration) <= 1 / FPS + 0.03  # one frame, plus AAC's 1024-sample packets


def test_moov_comes_before_mdat(rendered) -> None:
    atoms = top_level_atoms(rendered[2] / "video.mp4")
    assert atoms.index("moov") < atoms.index("mdat")


def test_frames_match_the_preview(rendered) -> None:
    """Each engine renders the same plan the preview draws (PSNR over H.264 at a tiny size)."""
    _, timeline, out, _ = rendered
    wanted = {round(s.start_frame + s.frames * 0.8) for s in timeline.scenes}
    with av.open(str(out / "video.mp4")) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index not in wanted:
                continue
            got = np.asarray(decoded.to_image(), np.float64)
            want = np.asarray(preview(timeline, index / FPS), np.float64)
            mse = ((got - want) ** 2).mean()
            psnr = 10 * math.log10(255 ** 2 / mse) if mse else 99
            assert psnr > 28, (index, psnr)


def test_poster_and_thumbnail(rendered) -> None:
    _, timeline, out, _ = rendered
    assert Image.open(out / "poster.jpg").size == SIZE
    gif = Image.open(out / "thumb.gif")
    assert gif.width <= 480 and gif.info.get("loop") == 0 and gif.n_frames > 1
    poster = np.asarray(Image.open(out / "poster.jpg"), np.float64)
    want = np.asarray(preview(timeline, timeline.poster_time), np.float64)
    assert np.abs(poster - want).mean() < 6


def test_captions_are_webvtt_timed_to_the_scenes(rendered) -> None:
    _, timeline, out, _ = rendered
    captions = list(webvtt.read(str(out / "captions.vtt")))
    assert len(captions) >= len([s for s in timeline.scenes if s.narration])
    assert captions[0].start_in_seconds == 0
    assert captions[-1].end_in_seconds == pytest.approx(timeline.duration, abs=0.01)
    for a, b in zip(captions, captions[1:]):
        assert a.end_in_seconds <= b.start_in_seconds + 0.001
    text = " ".join(c.text for c in captions)
    first_name = sample("IT-000123" if timeline.storyboard == "bill_explainer" else "EG-000790")["first_name"]
    assert first_name in text


def test_cta_json(rendered) -> None:
    _, timeline, out, _ = rendered
    doc = json.loads((out / "cta.json").read_text(encoding="utf-8"))
    assert doc["duration"] == pytest.approx(timeline.duration)
    assert [(c["start"], c["end"], c["action"]) for c in doc["ctas"]] == [
        (c.start, c.end, c.action) for c in timeline.ctas]
    assert all(0 <= c["start"] < c["end"] <= doc["duration"] for c in doc["ctas"])
    assert all(c["label"] for c in doc["ctas"])


def test_a_silent_storyboard_has_no_audio_stream(tmp_path: Path) -> None:
    board = load_storyboard(DATA / "golden.yaml")
    values = {"first_name": "A", "usage": [], "lines": [], "locale": "en-US"}
    out = tmp_path / "out"
    render(plan(board, values, LINKS, size=(64, 36)), out)
    with av.open(str(out / "video.mp4")) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_captions_escape_markup(tmp_path: Path) -> None:
    from billcast.renderer import webvtt as to_vtt

    board = load_storyboard(DATA / "golden.yaml")
    timeline = plan(board, {"first_name": "A", "usage": [], "lines": [], "locale": "en-US"}, LINKS)
    scene = timeline.scenes[0]
    from dataclasses import replace

    timeline = replace(timeline, scenes=(replace(scene, narration="<b>Bob</b> & --> x\n\nnext"),))
    text = to_vtt(timeline)
    path = tmp_path / "c.vtt"
    path.write_text(text, encoding="utf-8")
    (cue,) = webvtt.read(str(path))
    assert "&lt;b&gt;Bob&lt;/b&gt; &amp; --&gt; x next" in text
    assert html.unescape(cue.text) == "<b>Bob</b> & --> x next"


# --- failures leave nothing half-written ---------------------------------------------------------

def no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def broken_asset_board(tmp_path: Path):
    assets = tmp_path / "assets"
    shutil.copytree(ROOT / "assets" / "fonts", assets / "fonts")
    (assets / "images").mkdir()
    (assets / "images" / "logo.png").write_bytes(b"this is not a PNG")
    path = tmp_path / "board.yaml"
    path.write_text(BASE, encoding="utf-8")
    return load_storyboard(path, assets_dir=assets)


def test_an_unreadable_asset_names_it_and_writes_nothing(tmp_path: Path) -> None:
    board = broken_asset_board(tmp_path)
    timeline = plan(board, {"first_name": "A", "locale": "en-US"}, LINKS, size=(64, 36))
    out = tmp_path / "out"
    with pytest.raises(AssetError) as info:
        render(timeline, out, fonts_dir=board.assets_dir / "fonts")
    assert "logo.png" in str(info.value) and "cannot be read" in str(info.value)
    assert not out.exists() and no_leftovers(tmp_path)


def test_a_failed_re_render_keeps_the_previous_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "video.mp4").write_bytes(b"previous")
    board = broken_asset_board(tmp_path)
    timeline = plan(board, {"first_name": "A", "locale": "en-US"}, LINKS, size=(64, 36))
    with pytest.raises(AssetError):
        render(timeline, out, fonts_dir=board.assets_dir / "fonts")
    assert (out / "video.mp4").read_bytes() == b"previous" and no_leftovers(tmp_path)


def test_cli_render_missing_field_exits_2_and_writes_nothing(tmp_path: Path, write_record, capsys) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE.replace("{{ t.hello }}\"\n        box", "{{ nickname }}\"\n        box"), encoding="utf-8")
    record = write_record(sample("IT-000123"))
    out = tmp_path / "out"
    code = main(["render", str(board), "--customer", str(record), "--out", str(out), "--size", "64x36"])
    assert code == 2
    assert f"{board}:18: scenes[0].layers[0].text: the values have no such field: 'nickname' is undefined" \
        in capsys.readouterr().err
    assert not out.exists() and no_leftovers(tmp_path)


def test_cli_render_bad_record_exits_3(tmp_path: Path, write_record, capsys) -> None:
    obj = sample("IT-000123")
    obj["currency"] = "EURO"
    code = main(["render", str(ROOT / "storyboards" / "bill_explainer.yaml"), "--customer", str(write_record(obj)),
                 "--out", str(tmp_path / "out")])
    assert code == 3 and "currency" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_preview_writes_one_frame(tmp_path: Path, write_record) -> None:
    out = tmp_path / "frame.png"
    code = main(["preview", str(ROOT / "storyboards" / "bill_explainer.yaml"), "--customer",
                 str(write_record(sample("DE-000456"))), "--at", "5", "--out", str(out), "--size", "320x180"])
    assert code == 0 and Image.open(out).size == (320, 180)
    assert main(["preview", str(ROOT / "storyboards" / "bill_explainer.yaml"), "--customer",
                 str(write_record(sample("DE-000456"))), "--at", "31", "--out", str(out)]) == 2


def test_cli_render_writes_a_folder(tmp_path: Path, write_record, capsys) -> None:
    out = tmp_path / "out"
    code = main(["render", str(ROOT / "storyboards" / "firm_reminder.yaml"), "--customer",
                 str(write_record(sample("US-001235"))), "--out", str(out), "--size", "64x36", "--fps", "5"])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"video.mp4", "poster.jpg", "captions.vtt", "thumb.gif", "cta.json"}
