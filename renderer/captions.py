"""WebVTT captions from the scenes' narration, timed to the scenes."""

from __future__ import annotations

import re

from .timeline import Timeline

_SENTENCE = re.compile(r"(?<=[.!?؟。])\s+")


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def escape_cue(text: str) -> str:
    """Cue text shows as written: markup characters are escaped, blank lines folded."""
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cues(timeline: Timeline) -> list[tuple[float, float, str]]:
    """(start, end, text) for each sentence, sharing its scene's time by length."""
    out = []
    for scene in timeline.scenes:
        if not scene.narration:
            continue
        sentences = [s for s in _SENTENCE.split(" ".join(scene.narration.split())) if s.strip()]
        total = sum(len(s) for s in sentences)
        start = scene.start
        for sentence in sentences:
            end = start + scene.duration * len(sentence) / total
            out.append((start, end, sentence))
            start = end
    return out


def webvtt(timeline: Timeline) -> str:
    lines = ["WEBVTT", ""]
    for i, (start, end, text) in enumerate(cues(timeline), 1):
        lines += [str(i), f"{_stamp(start)} --> {_stamp(end)}", escape_cue(text), ""]
    return "\n".join(lines)
