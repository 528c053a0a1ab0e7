"""The fast compositor's descriptions: what ffmpeg is to encode, as argv lists, with no I/O.

A motion part becomes one filter graph (the scene's flattened background, each
layer above overlaid on the frames it shows on, slides as ``overlay`` position
expressions and fades on the sprite's alpha); repeats, cuts, the audio bed and
the final join are commands of their own. Tests assert on these descriptions
without starting a process; ``engine_ffmpeg.run`` is the one place that runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from .timeline import Anim

TIME_STEPS = 100  # sub-frame steps of the filters' time base, so fades start between frames as planned
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error", "-filter_complex_threads", "1", "-y")


# --- descriptions: what to encode -----------------------------------------------------------------

@dataclass(frozen=True)
class Shifted:
    """A sprite padded by ``px``, ``py`` transparent pixels on the left and top, used when its
    position's parity is (``px``, ``py``): placed one pixel early, it lands on even pixels,
    the only ones where 4:2:0 composition puts a picture."""

    px: int
    py: int
    path: str  # raw RGBA
    size: tuple[int, int]


@dataclass(frozen=True)
class Span:
    """Frames ``first`` to ``stop`` (not included) of a job, counted from its first, on which a layer
    shows: ``faded`` when its fades run there, else it shows at its own opacity throughout."""

    first: int
    stop: int
    faded: bool


@dataclass(frozen=True)
class Overlay:
    """A layer ffmpeg puts on the base picture: on the frames of its ``spans``, or on every frame
    of its job, faded, when they are not given. On other frames it is invisible, and no filter
    touches it there."""

    x: int
    y: int
    anims: tuple[Anim, ...]
    variants: tuple[Shifted, ...]  # one per parity the position can take
    spans: tuple[Span, ...] | None = None

    def spans_in(self, frames: int) -> tuple[Span, ...]:
        return (Span(0, frames, True),) if self.spans is None else self.spans


def spans_of(opacity: list[float], full: float) -> tuple[Span, ...]:
    """Runs of frames on which a layer shows: faded where its ``opacity`` differs from ``full``
    (its own), plain where it equals it; frames where it is 0 belong to none."""
    spans: list[Span] = []
    for i, value in enumerate(opacity):
        if value <= 0:
            continue
        faded = value != full
        if spans and spans[-1].stop == i and spans[-1].faded == faded:
            spans[-1] = Span(spans[-1].first, i + 1, faded)
        else:
            spans.append(Span(i, i + 1, faded))
    return tuple(spans)


@dataclass(frozen=True)
class MotionJob:
    """Frames composed and encoded by ffmpeg; optionally closed by a keyframe of the picture that then holds.

    ``keyed``: after the ``frames`` moving frames comes one more, a keyframe, which the
    repeated frames of the hold that follows copy.
    """

    out: str
    base: str  # raw RGB picture of everything below the overlays
    start: int  # first frame, from the scene's start (its time drives the animations)
    frames: int
    overlays: tuple[Overlay, ...]
    keyed: bool = False

    @property
    def encoded(self) -> int:
        return self.frames + self.keyed


def _num(value: float) -> str:
    return f"{value:.6g}"


def _slide(anims: Iterable[Anim], axis: int) -> str | None:
    """The sum of slide offsets at time ``t``, easing out like ``compose.layer_state``."""
    terms = []
    for a in anims:
        if a.type != "slide_in" or not a.offset[axis]:
            continue
        if a.duration > 0:
            left = f"pow(1-clip((t-{_num(a.start)})/{_num(a.duration)},0,1),3)"
        else:
            left = f"lte(t,{_num(a.start)})"
        terms.append(f"{_num(a.offset[axis])}*{left}")
    return "+".join(terms) or None


def _escape(text: object, chars: str) -> str:
    """``text`` with backslashes and each of ``chars`` escaped by a backslash."""
    text = str(text).replace("\\", "\\\\")
    for ch in chars:
        text = text.replace(ch, "\\" + ch)
    return text


def _filter(name: str, *args: object, **options: object) -> str:
    """One filter as filter-graph text: its option values escaped, then the whole for the graph."""
    params = [_escape(a, "'=:") for a in args]
    params += [f"{key}={_escape(value, chr(39) + '=:')}" for key, value in sorted(options.items())]
    return _escape(name + ("=" + ":".join(params) if params else ""), "'[],;")


def _timing(frames: int, fps: int, start: int = 0) -> list[str]:
    """Filters repeating a single picture ``frames`` times, stamped with scene time from frame ``start``."""
    return [_filter("loop", loop=frames - 1, size=1, start=0), _filter("settb", expr=f"1/{fps * TIME_STEPS}"),
            _filter("setpts", f"(N+{start})*{TIME_STEPS}")]


class _Graph:
    """A filter graph written as ffmpeg's ``-filter_complex`` text, and the picture files it reads.

    Written directly: ffmpeg-python's compile grows with the square of the filters and cost
    0.05 s per customer. A picture used more than once is read and converted once, then split.
    """

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self._chains: list[str] = []
        self._pictures: dict[str, tuple[list[str], str, list[str]]] = {}  # path: input argv, format, uses
        self._labels = 0

    def _label(self) -> str:
        self._labels += 1
        return f"[s{self._labels}]"

    def picture(self, path: str, size: tuple[int, int], pix_fmt: str, to: str) -> str:
        """A stream of the raw picture ``path`` (one frame) in the pixel format ``to``."""
        if path not in self._pictures:
            argv = ["-f", "rawvideo", "-framerate", str(self.fps), "-pix_fmt", pix_fmt, "-s", f"{size[0]}x{size[1]}",
                    "-i", path]
            self._pictures[path] = (argv, to, [])
        label = self._label()
        self._pictures[path][2].append(label)
        return label

    def chain(self, sources: Iterable[str], *filters: str) -> str:
        """The stream out of ``filters`` applied in turn to ``sources``."""
        out = self._label()
        self._chains.append("".join(sources) + ",".join(filters) + out)
        return out

    def args(self) -> list[str]:
        inputs, heads = [], []
        for index, (argv, to, uses) in enumerate(self._pictures.values()):
            inputs += argv
            split = [_filter("split", len(uses))] if len(uses) > 1 else []
            heads.append(f"[{index}]" + ",".join([_filter("format", to), *split]) + "".join(uses))
        return [*inputs, "-filter_complex", ";".join(heads + self._chains)]


def _motion_stream(job: MotionJob, size: tuple[int, int], fps: int, graph: _Graph) -> str:
    """The job's frames: the base picture, and each overlay on the frames it shows on.

    A sprite's stream holds only the frames of one of its spans, so a layer costs nothing
    before it appears, and ``fade`` (which copies every frame it is given) sees only the
    frames where the layer fades. Overlays end with ``eof_action=pass``, which is also what
    lets ffmpeg blend into the base frame in place: with ``repeat`` it keeps a reference to
    the frame for the sprite's sake and copies the whole frame at every overlay, which was a
    third of the graph's cost.
    """
    video = graph.chain([graph.picture(job.base, size, "rgb24", "yuv420p")], *_timing(job.encoded, fps, job.start))
    for ov in job.overlays:
        dx, dy = _slide(ov.anims, 0), _slide(ov.anims, 1)
        x = f"{ov.x}+round({dx})" if dx else str(ov.x)
        y = f"{ov.y}+round({dy})" if dy else str(ov.y)
        for span in ov.spans_in(job.encoded):
            fades = [_filter("fade", type="in" if a.type == "fade_in" else "out", st=_num(a.start),
                             d=_num(max(a.duration, 1e-3)), alpha=1)
                     for a in ov.anims if span.faded and a.type in ("fade_in", "fade_out")]
            for v in ov.variants:
                sprite = graph.chain([graph.picture(v.path, v.size, "rgba", "yuva420p")],
                                     *_timing(span.stop - span.first, fps, job.start + span.first), *fades)
                extra = {}
                if len(ov.variants) > 1:  # exactly one variant shows in each frame
                    extra["enable"] = f"eq(mod(abs({x}),2),{v.px})*eq(mod(abs({y}),2),{v.py})"
                video = graph.chain([video, sprite], _filter(
                    "overlay", x=f"{x}-{v.px}", y=f"{y}-{v.py}", eof_action="pass",
                    eval="frame" if dx or dy else "init", format="yuv420", **extra))
    return graph.chain([video], _filter("setpts", "PTS-STARTPTS"), _filter("settb", expr=f"1/{fps}"))


def _output(stream: str, path: str, options: dict[str, object]) -> list[str]:
    """``-map`` of one of the graph's streams, its options (None: a flag alone), and its file."""
    args = ["-map", stream]
    for key, value in sorted(options.items()):
        args += [f"-{key}"] if value is None else [f"-{key}", str(value)]
    return [*args, path]


def encode_command(jobs: Iterable[MotionJob], *, size: tuple[int, int], fps: int, options: dict[str, str],
                   exe: str = "ffmpeg") -> list[str]:
    """One ffmpeg command that encodes every job into its own segment file."""
    graph = _Graph(fps)
    outputs: list[str] = []
    for job in jobs:
        extra = {}
        if job.keyed:
            extra = {"force_key_frames": f"expr:eq(n,{job.frames})", "forced-idr": "1",
                     "bsf:v": f"noise=drop=gt(n\\,{job.frames})"}
        outputs += _output(_motion_stream(job, size, fps, graph), job.out, {**extra, **options})
    return [exe, *graph.args(), *outputs, *GLOBAL_ARGS]


def repeat_command(runs: dict[int, str], grey: str, *, size: tuple[int, int], fps: int,
                   options: dict[str, str], exe: str = "ffmpeg") -> list[str]:
    """Segments of ``n`` frames that each repeat the one before, for each ``n: path``.

    ``grey`` is a raw RGB picture of flat grey, converted like every other picture.
    Its keyframe is encoded exactly, so every following frame skips every macroblock;
    the keyframe is then dropped, leaving frames that copy whatever precedes them.
    """
    graph = _Graph(fps)
    outputs: list[str] = []
    for frames, path in sorted(runs.items()):
        stream = graph.chain([graph.picture(grey, size, "rgb24", "yuv420p")], *_timing(frames + 1, fps),
                             _filter("settb", expr=f"1/{fps}"))
        no_keys = {**options, "g": str(frames + 2)}  # one keyframe only: the grey one, dropped
        outputs += _output(stream, path, {"frames:v": frames + 1, "bsf:v": "noise=drop=eq(n\\,0)", **no_keys})
    return [exe, *graph.args(), *outputs, *GLOBAL_ARGS]


def cut_command(source: str, cuts: dict[int, str], *, exe: str = "ffmpeg") -> list[str]:
    """The first ``n`` frames of ``source`` into each ``n: path``, by stream copy."""
    video = ffmpeg.input(source)["v"]
    # -copyinkf: the run starts on a frame that is not a keyframe, and stream copy would skip up to one
    return _command([video.output(path, c="copy", copyinkf=None, **{"frames:v": n})
                     for n, path in sorted(cuts.items())], exe)


def audio_command(bed: str, out: str, *, duration: float, volume: float, fade_out: float, bitrate: str,
                  exe: str = "ffmpeg") -> list[str]:
    """The audio bed looped to the video's length, its volume set, faded out at the end."""
    sound = ffmpeg.input(bed, stream_loop=-1).audio.filter("volume", _num(volume))
    fade = min(fade_out, duration)
    if fade > 0:
        sound = sound.filter("afade", type="out", start_time=_num(duration - fade), duration=_num(fade))
    return _command([sound.output(out, t=_num(duration), acodec="aac", audio_bitrate=bitrate, ar=48000)], exe)


def join_command(listing: str, out: str, *, audio: str | None, exe: str = "ffmpeg") -> list[str]:
    """Segments joined by stream copy (the concat demuxer), the sound muxed without touching the video."""
    video = ffmpeg.input(listing, f="concat", safe=0)
    streams = [video["v"]]
    if audio is not None:
        streams.append(ffmpeg.input(audio)["a"])
    return _command([ffmpeg.output(*streams, out, c="copy", movflags="+faststart")], exe)


def _command(outputs: list, exe: str) -> list[str]:
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS[:-1]).compile(cmd=exe, overwrite_output=True)


def concat_listing(paths: Iterable[Path]) -> str:
    """The concat demuxer's script for ``paths``, each quoted as its syntax asks."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"
