"""The planned timeline: plain frozen data that every compositor renders the same way.

Coordinates are output pixels, times are seconds; colours are RGBA tuples.
Nothing here refers to storyboards, records or files' contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RENDERER_VERSION = "1"

RGBA = tuple[int, int, int, int]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Anim:
    type: str  # fade_in | fade_out | slide_in
    start: float  # seconds from the scene's start
    duration: float
    offset: tuple[float, float] = (0.0, 0.0)  # slide_in: where it starts, relative to its box


@dataclass(frozen=True)
class TextSpec:
    text: str
    color: RGBA
    weight: str
    size: float
    min_size: float
    align: str  # left | center | right
    valign: str
    max_lines: int
    line_height: float
    direction: str  # ltr | rtl: the paragraph's base direction


@dataclass(frozen=True)
class ImageSpec:
    path: str
    fit: str
    align: str


@dataclass(frozen=True)
class RectSpec:
    fill: RGBA
    radius: float
    stroke: RGBA | None
    stroke_width: float


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    role: str  # current | last_year | other
    caption: str  # the formatted value, shown on highlighted bars


@dataclass(frozen=True)
class ChartSpec:
    bars: tuple[Bar, ...]
    unit: str
    bar_color: RGBA
    current_color: RGBA
    last_year_color: RGBA
    text_color: RGBA
    legend_current: str
    legend_last_year: str
    direction: str


@dataclass(frozen=True)
class TableSpec:
    rows: tuple[tuple[str, str], ...]
    color: RGBA
    value_color: RGBA
    rule_color: RGBA | None
    weight: str
    size: float
    min_size: float
    direction: str


@dataclass(frozen=True)
class QRSpec:
    data: str
    color: RGBA
    background: RGBA


Spec = TextSpec | ImageSpec | RectSpec | ChartSpec | TableSpec | QRSpec


@dataclass(frozen=True)
class PlannedLayer:
    spec: Spec
    box: Box
    opacity: float
    anims: tuple[Anim, ...] = ()
    name: str = ""
    index: int = field(default=-1, repr=False, compare=False)  # its place in the storyboard's scene (for editors)


@dataclass(frozen=True)
class BackgroundSpec:
    color: RGBA | None = None
    gradient: tuple[RGBA, RGBA] | None = None
    angle: float = 90.0
    image: str | None = None


@dataclass(frozen=True)
class CallToAction:
    label: str
    action: str
    start: float  # seconds from the video's start
    end: float
    link: str | None
    box: Box | None  # fractions of the frame: x, y, w, h
    scene: str


@dataclass(frozen=True)
class PlannedScene:
    id: str
    index: int
    start_frame: int
    frames: int
    fps: int
    size: tuple[int, int]
    background: BackgroundSpec
    layers: tuple[PlannedLayer, ...]
    narration: str | None
    cta: CallToAction | None

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def end(self) -> float:
        return (self.start_frame + self.frames) / self.fps


@dataclass(frozen=True)
class AudioSpec:
    path: str
    volume: float
    fade_out: float


@dataclass(frozen=True)
class ThumbnailSpec:
    start: float
    duration: float
    fps: int
    width: int


@dataclass(frozen=True)
class Timeline:
    storyboard: str
    size: tuple[int, int]
    fps: int
    frames: int
    scenes: tuple[PlannedScene, ...]
    audio: AudioSpec | None
    poster_time: float
    thumbnail: ThumbnailSpec
    locale: str
    language: str
    direction: str
    ctas: tuple[CallToAction, ...] = field(default=())

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def scene_at(self, t: float) -> PlannedScene:
        """The scene showing at ``t`` seconds (the last one past the end)."""
        frame = min(max(int(round(t * self.fps, 6)), 0), self.frames - 1)
        for scene in self.scenes:
            if frame < scene.start_frame + scene.frames:
                return scene
        return self.scenes[-1]
