"""The MoviePy compositor: the reference engine, frame for frame the same plan.

Each scene is a ``CompositeVideoClip`` of the background and one ``ImageClip``
per layer sprite, moved and faded by ``layer_state``; the scenes are joined,
the audio bed laid under the whole, and MoviePy encodes H.264 + AAC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .compose import Compositor, layer_state
from .encoding import VideoSettings
from .errors import EncodeError
from .timeline import PlannedLayer, PlannedScene, Timeline


def _layer_clip(layer: PlannedLayer, sprite, duration: float):
    from moviepy import ImageClip

    rgba = np.asarray(sprite.image)
    clip = ImageClip(rgba[..., :3], transparent=False).with_duration(duration)
    mask = ImageClip(rgba[..., 3].astype(np.float64) / 255.0, is_mask=True).with_duration(duration)
    if layer.anims:
        mask = mask.transform(lambda get_frame, t: get_frame(t) * layer_state(layer, t)[0])
    elif layer.opacity < 1:
        mask = mask.image_transform(lambda frame: frame * layer.opacity)

    def position(t: float) -> tuple[int, int]:
        _, dx, dy = layer_state(layer, t)
        return sprite.x + dx, sprite.y + dy

    return clip.with_mask(mask).with_position(position if layer.anims else (sprite.x, sprite.y))


def _scene_clip(comp: Compositor, scene: PlannedScene):
    from moviepy import CompositeVideoClip, ImageClip

    duration = scene.duration
    bg = np.asarray(comp.drawer.background(scene.background, comp.timeline.size).convert("RGB"))
    clips = [ImageClip(bg, transparent=False).with_duration(duration)]
    clips += [_layer_clip(layer, sprite, duration) for layer, sprite in comp.sprites(scene)]
    return CompositeVideoClip(clips, size=comp.timeline.size).with_duration(duration)


def _audio(timeline: Timeline):
    from moviepy import AudioFileClip, afx

    spec = timeline.audio
    bed = AudioFileClip(spec.path)
    effects = []
    if bed.duration < timeline.duration:
        effects.append(afx.AudioLoop(duration=timeline.duration))
    bed = bed.with_effects(effects) if effects else bed
    bed = bed.subclipped(0, timeline.duration)
    return bed.with_effects([afx.MultiplyVolume(spec.volume), afx.AudioFadeOut(min(spec.fade_out,
                                                                                   timeline.duration))])


def encode_moviepy(comp: Compositor, out: Path, tmp_dir: Path, settings: VideoSettings) -> None:
    """Encode ``comp``'s timeline to ``out`` through MoviePy."""
    from moviepy import concatenate_videoclips

    timeline = comp.timeline
    video = concatenate_videoclips([_scene_clip(comp, s) for s in timeline.scenes])
    video = video.with_duration(timeline.duration)
    audio = None
    if timeline.audio is not None:
        audio = _audio(timeline)
        video = video.with_audio(audio)
    try:
        video.write_videofile(str(out), fps=timeline.fps, codec="libx264", audio_codec="aac",
                              audio_bitrate=settings.audio_bitrate, preset=settings.preset,
                              pixel_format="yuv420p", temp_audiofile_path=str(tmp_dir), logger=None,
                              threads=settings.threads, ffmpeg_params=settings.x264_params(timeline.size, timeline.fps))
    except OSError as exc:
        raise EncodeError(f"MoviePy could not encode {out.name}: {exc}") from None
    finally:
        video.close()
        if audio is not None:
            audio.close()
