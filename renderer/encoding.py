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


@dataclass(frozen=True)
class VideoSettings:
    preset: str = "medium"
    crf: int = 23
    audio_bitrate: str = "128k"
    threads: int | None = None
    gop_seconds: float = 2.0

    def x264_params(self, size: tuple[int, int], fps: int) -> list[str]:
        return ["-crf", str(self.crf), "-profile:v", "high", "-level:v", h264_level(size, fps),
                "-g", str(max(int(fps * self.gop_seconds), 1)), "-movflags", "+faststart"]
