"""Encoder settings shared by every engine: H.264 that plays everywhere, and fast start."""

from __future__ import annotations

from dataclasses import dataclass


def h264_level(size: tuple[int, int], fps: int) -> str:
    """The lowest H.264 level whose macroblock rate and frame size fit the video."""
    mbs = ((size[0] + 15) // 16) * ((size[1] + 15) // 16)
    for level, max_fs, max_mbps in (("3.0", 1620, 40500), ("3.1", 3600, 108000), ("3.2", 5120, 216000),
                                    ("4.0", 8192, 245760), ("4.2", 8704, 522240), ("5.1", 36864, 983040)):
        if mbs <= max_fs and mbs * fps <= max_mbps:
            return level
    return "5.2"


# Pixels are converted from RGB with the BT.601 matrix (ffmpeg's default) in limited range; saying
# so lets players convert back exactly, instead of guessing a matrix from the picture size.
COLOR_ARGS = ("-colorspace", "smpte170m", "-color_primaries", "bt709", "-color_trc", "bt709",
              "-color_range", "tv")


# x264 analysis these pictures do not need (docs/BENCHMARKS.md measures each): every motion is a slide
# by whole pixels or a fade in place, so sub-pixel refinement (``subme=0``), the hexagon motion search
# (``me=dia`` finds a slide from its predicted vector), sub-macroblock partitions and intra sub-blocks in
# P-frames (``partitions=none``; keyframes keep theirs) and weighted prediction (``weightp=0``: a fade
# changes one layer, not the whole frame) cost CPU and buy almost no bytes or quality. Together they
# save about 40 % of x264's time per moving frame.
X264_ANALYSIS = "subme=0:me=dia:partitions=none:weightp=0"


@dataclass(frozen=True)
class VideoSettings:
    preset: str = "veryfast"  # see docs/BENCHMARKS.md for what each preset costs and buys
    crf: int = 23
    audio_bitrate: str = "128k"
    threads: int | None = None
    gop_seconds: float = 2.0
    analysis: str = X264_ANALYSIS  # x264 options on top of the preset; "" keeps the preset's own

    def _analysis(self, *before: str) -> str:
        return ":".join(p for p in (*before, self.analysis) if p)

    def x264_params(self, size: tuple[int, int], fps: int) -> list[str]:
        """Extra ffmpeg arguments for the MoviePy engine (which names codec, preset and pixels itself)."""
        return ["-crf", str(self.crf), "-profile:v", "high", "-level:v", h264_level(size, fps),
                "-g", str(max(int(fps * self.gop_seconds), 1)), *COLOR_ARGS, "-movflags", "+faststart",
                *(("-x264-params", self.analysis) if self.analysis else ())]

    def segment_options(self, size: tuple[int, int], fps: int) -> dict[str, str]:
        """ffmpeg output options of every fast-engine segment: identical, so segments join by stream copy.

        No B-frames: each segment's timestamps start at zero with no reordering delay,
        and a frame that repeats its predecessor can be carried over between segments.
        ``stitchable`` keeps the parameter sets from depending on what was encoded.
        ``ipratio`` 1.8 (x264's default is 1.4) codes keyframes finer: a hold shows its
        keyframe for seconds, repeated, so its quality is the video's. ``analysis``
        (``X264_ANALYSIS``) skips the searches that slides and fades do not need.
        """
        return {"c:v": "libx264", "preset": self.preset, "crf": str(self.crf), "profile:v": "high",
                "level:v": h264_level(size, fps), "bf": "0", "g": str(max(int(fps * self.gop_seconds), 1)),
                "pix_fmt": "yuv420p", "threads": str(self.threads or 1),
                "x264-params": self._analysis("stitchable=1", "ipratio=1.8"),
                **{k.lstrip("-"): v for k, v in zip(COLOR_ARGS[::2], COLOR_ARGS[1::2])}}
