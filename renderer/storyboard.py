"""The storyboard format: a YAML video template, parsed into a validated model.

Parsing happens once, at the edge. Every problem becomes a ``StoryboardError``
naming the file, the YAML line and the dotted field, so ``billcast check`` can
print ``storyboards/reminder.yaml:12: scenes[2].duration: must be > 0, got -1``.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import AssetError, SourceErrors, StoryboardError
from .packaged import packaged

MAX_DURATION = 180  # seconds of one video
MAX_SCENES = 50
MAX_LAYERS = 40  # per scene
MAX_PIXELS = 1920 * 1080 * 60 * 180  # width x height x fps x seconds: 1080p60 for 3 minutes, 4K30 for 90 s
MAX_TEMPLATE = 10_000  # characters of one text, expression or translation

COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Box = tuple[float, float, float, float]


class Animation(_Model):
    """One animation of a layer; ``delay`` counts from the scene's start."""

    type: Literal["fade_in", "fade_out", "slide_in"]
    duration: float = Field(0.5, gt=0, le=30)
    delay: float | None = Field(None, ge=0)
    edge: Literal["left", "right", "top", "bottom", "start", "end"] = "start"
    distance: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _edge_only_for_slides(self) -> "Animation":
        if self.type != "slide_in" and "edge" in self.model_fields_set:
            raise ValueError("edge applies to slide_in only")
        return self


class Font(_Model):
    family: Literal["sans"] = "sans"
    weight: Literal["regular", "bold"] = "regular"
    size: float = Field(48, gt=0, le=400)
    min_size: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _min_below_size(self) -> "Font":
        if self.min_size is not None and self.min_size > self.size:
            raise ValueError(f"min_size ({self.min_size:g}) must not exceed size ({self.size:g})")
        return self


class _Layer(_Model):
    id: str | None = None
    box: Box
    opacity: float = Field(1.0, ge=0, le=1)
    when: str | None = None
    animate: list[Animation] = []

    @field_validator("box")
    @classmethod
    def _positive_box(cls, box: Box) -> Box:
        if box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"width and height must be > 0, got {box[2]:g}x{box[3]:g}")
        return box


class TextLayer(_Layer):
    kind: Literal["text"]
    text: str
    font: Font = Font()
    color: str = "#FFFFFF"
    align: Literal["start", "center", "end", "left", "right"] = "start"
    valign: Literal["top", "middle", "bottom"] = "top"
    max_lines: int = Field(1, ge=1, le=20)
    line_height: float = Field(1.25, ge=0.8, le=3)


class ImageLayer(_Layer):
    kind: Literal["image"]
    src: str
    fit: Literal["contain", "cover", "stretch"] = "contain"
    align: Literal["start", "center", "end"] = "center"


class RectLayer(_Layer):
    kind: Literal["rect"]
    fill: str = "#FFFFFF"
    radius: float = Field(0, ge=0)
    stroke: str | None = None
    stroke_width: float = Field(0, ge=0)


class ChartLayer(_Layer):
    kind: Literal["chart"]
    values: str = Field(description="expression giving a list of {period: 'YYYY-MM', quantity}")
    unit: str = ""
    months: int = Field(13, ge=2, le=36)
    bar_color: str = "#FFFFFF66"
    current_color: str = "#F2A541"
    last_year_color: str = "#FFFFFF"
    text_color: str = "#FFFFFF"
    legend_current: str = ""
    legend_last_year: str = ""


class TableLayer(_Layer):
    """Rows of label and value, e.g. a bill's lines: labels wrap, values line up at the end."""

    kind: Literal["table"]
    rows: str = Field(description="expression giving a list; each item is `row` in label and value")
    label: str = "{{ row.label }}"
    value: str = "{{ row.value }}"
    font: Font = Font(size=30)
    color: str = "#102A35"
    value_color: str | None = None
    rule_color: str | None = None
    max_rows: int = Field(8, ge=1, le=30)


class QRLayer(_Layer):
    kind: Literal["qr"]
    link: str
    color: str = "#102A35"
    background: str = "#FFFFFF"


Layer = Annotated[Union[TextLayer, ImageLayer, RectLayer, ChartLayer, TableLayer, QRLayer], Field(discriminator="kind")]


class Background(_Model):
    color: str | None = None
    gradient: tuple[str, str] | None = None
    angle: float = 90
    image: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Background":
        given = [k for k in ("color", "gradient", "image") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of color, gradient or image")
        return self


class CallToAction(_Model):
    label: str
    action: Literal["pay", "plan", "link"]
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    link: str | None = None
    box: Box | None = None
    when: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "CallToAction":
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g}) must be after start ({self.start:g})")
        if self.action == "link" and not self.link:
            raise ValueError("action 'link' needs a link name")
        return self


class Scene(_Model):
    id: str
    duration: float = Field(gt=0, le=MAX_DURATION)
    background: Background = Background(color="#0E4D64")
    layers: list[Layer] = Field([], max_length=MAX_LAYERS)
    narration: str | None = None
    cta: CallToAction | None = None


class Audio(_Model):
    bed: str
    volume: float = Field(0.6, ge=0, le=1)
    fade_out: float = Field(2.0, ge=0, le=30)


class Thumbnail(_Model):
    start: float | None = Field(None, ge=0)
    duration: float = Field(3.0, gt=0, le=10)
    fps: int = Field(8, ge=1, le=25)
    width: int = Field(480, ge=64, le=480)


class StoryboardModel(_Model):
    """The whole file as written; see ``Storyboard`` for the loaded form."""

    version: Literal[1] = 1
    name: str
    description: str = ""
    purpose: Literal["bill", "reminder", "collection"] = "bill"
    size: tuple[int, int] = (1280, 720)
    fps: int = Field(25, ge=1, le=60)
    default_language: str = "en"
    mirror_rtl: bool = True
    poster_time: float = Field(0, ge=0)
    audio: Audio | None = None
    thumbnail: Thumbnail = Thumbnail()
    colors: dict[str, str] = {}
    translations: dict[str, dict[str, str]] = {}
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)

    @field_validator("size")
    @classmethod
    def _even_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if not (16 <= w <= 3840 and 16 <= h <= 2160) or w % 2 or h % 2:
            raise ValueError(f"must be even numbers between 16x16 and 3840x2160, got {w}x{h}")
        return size

    @property
    def duration(self) -> float:
        return sum(scene.duration for scene in self.scenes)


class Storyboard:
    """A validated storyboard with where it came from: its file, lines and assets."""

    def __init__(self, model: StoryboardModel, *, path: str, lines: dict[tuple, int],
                 assets_dir: Path) -> None:
        self.model = model
        self.path = path
        self.lines = lines
        self.assets_dir = assets_dir

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def duration(self) -> float:
        return self.model.duration

    def line_of(self, loc: tuple) -> int | None:
        """The YAML line of a location, or of its nearest ancestor that has one."""
        return _line_of(self.lines, loc)

    def error(self, loc: tuple, message: str) -> StoryboardError:
        return StoryboardError(message, path=self.path, line=self.line_of(loc), field=dotted(loc))


def dotted(loc: tuple) -> str:
    """``('scenes', 2, 'duration')`` -> ``scenes[2].duration``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get((), None)


MAX_VALUES = 100_000  # values a storyboard may expand to; YAML aliases can make a few lines mean billions


class _SelfAlias(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values ``node`` stands for once its aliases are expanded (each shared node counted once);
    raises ``_SelfAlias`` for an alias used inside its own anchor."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        raise _SelfAlias(node.start_mark.line + 1)
    open_.add(id(node))
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(item, sizes, open_) for item in node.value)
    open_.discard(id(node))
    sizes[id(node)] = total
    return total


def _alias_error(node: yaml.Node, path: str) -> StoryboardError | None:
    """A document whose aliases would take long to expand, refused before it is: a few lines of YAML
    can mean billions of values ("billion laughs"), or an endless one."""
    try:
        size = _expanded_size(node, {}, set())
    except _SelfAlias as exc:
        return StoryboardError("a YAML alias (*name) is used inside its own anchor (&name)", path=path,
                               line=exc.line)
    if size <= MAX_VALUES:
        return None
    return StoryboardError(f"expands to more than {MAX_VALUES:,} values through YAML aliases (&, *); "
                           "write the repeated parts out, or use fewer aliases", path=path, line=1)


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None,
              seen: set[int] | None = None) -> dict[tuple, int]:
    """Line of every key path, each YAML node visited once (an alias points at lines already mapped)."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    out.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:
        return out
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            out[sub] = key.start_mark.line + 1
            _line_map(value, sub, out, seen)
            out[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, path + (index,), out, seen)
    return out


def _clean_loc(loc: tuple, lines: dict[tuple, int]) -> tuple:
    """Drop the discriminator tag pydantic puts after a layer's index (``layers[1].text``)."""
    kept: tuple = ()
    for part in loc:
        if part in _LAYER_KINDS and len(kept) >= 2 and kept[-2] == "layers" and isinstance(kept[-1], int):
            continue
        kept += (part,)
    return kept


_LAYER_KINDS = {"text", "image", "rect", "chart", "table", "qr"}


def _message(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field (check its spelling)"
    if kind == "missing":
        return "is required"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"does not match a layer kind: got {ctx.get('tag')!r}, expected one of {ctx.get('expected_tags')}"
    if kind == "too_long":
        ctx = err.get("ctx", {})
        return f"at most {ctx.get('max_length')} allowed, got {ctx.get('actual_length')}"
    if kind == "union_tag_not_found":
        return "is required (text, image, rect, chart, table or qr)"
    msg = err.get("msg", "invalid")
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type", "union_tag_invalid", "union_tag_not_found"):
        value = err["input"]
        if not isinstance(value, (dict, list)):
            msg = f"{msg}, got {value!r}"
    return msg


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str, path: str) -> tuple[Any, dict[tuple, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        refused = _alias_error(node, path) if node is not None else None
        if refused is not None:
            raise refused
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise StoryboardError(f"not valid YAML: {problem}", path=path, line=line) from None
    except RecursionError:
        raise StoryboardError("not valid YAML: nested too deeply", path=path) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise StoryboardError("must be a YAML mapping with name, size, fps and scenes", path=path, line=1)
    return data, _line_map(node)


def default_assets_dir() -> Path:
    """The packaged ``assets/`` folder: fonts, images and audio beds that ship with Billcast."""
    return packaged("assets")


def parse_storyboard(text: str, *, path: str = "<storyboard>", assets_dir: Path | None = None) -> Storyboard:
    """Validate a storyboard's text; raise ``StoryboardErrors`` listing every problem."""
    data, lines = _parse_yaml(text, path)
    try:
        model = StoryboardModel.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]), lines)
            if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                loc += ("kind",)
            errors.append(StoryboardError(_message(err), path=path, line=_line_of(lines, loc), field=dotted(loc)))
        raise StoryboardErrors(errors) from None
    board = Storyboard(model, path=path, lines=lines, assets_dir=(assets_dir or default_assets_dir()).absolute())
    from .validate import semantic_errors  # late: validate builds on this module's types

    problems = semantic_errors(board)
    if problems:
        raise StoryboardErrors(problems)
    return board


def read_storyboard(path: str | Path) -> str:
    """A storyboard file's text; ``StoryboardError`` when it cannot be read as UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StoryboardError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise StoryboardError("is not UTF-8 text", path=str(path)) from None


def load_storyboard(path: str | Path, *, assets_dir: Path | None = None) -> Storyboard:
    """Read and validate a storyboard file."""
    return parse_storyboard(read_storyboard(path), path=str(path), assets_dir=assets_dir)


class StoryboardErrors(SourceErrors, StoryboardError):
    """Several problems in one storyboard; ``errors`` lists each, in file order."""


def resolve_asset(board: Storyboard, src: str, loc: tuple) -> Path:
    """An asset path inside ``assets/``; anything that would leave it is refused. Touches no file."""
    pure = PurePosixPath(src)
    if not src or pure.is_absolute() or ".." in pure.parts or "\\" in src or ":" in src:
        raise AssetError(f"asset paths are relative to assets/ and may not leave it, got {src!r}",
                         path=board.path, line=board.line_of(loc), field=dotted(loc))
    return board.assets_dir / pure
