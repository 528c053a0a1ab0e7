"""Storyboards too big to render: refused when loaded, each with its file, line and field."""

from __future__ import annotations

import pytest

from billcast.renderer import StoryboardErrors, parse_storyboard

from test_storyboard import BASE


def problems(text: str) -> list[str]:
    with pytest.raises(StoryboardErrors) as info:
        parse_storyboard(text, path="big.yaml")
    return [str(e) for e in info.value.errors]


def scenes(count: int, duration: float = 1) -> str:
    return "".join(f"  - {{id: s{i}, duration: {duration}}}\n" for i in range(count))


def test_a_video_longer_than_three_minutes_is_refused() -> None:
    assert problems(BASE + scenes(2, 90)) == ["big.yaml:11: scenes: the scenes add up to 182 s; "
                                              "a video lasts at most 180 s"]


def test_one_scene_past_the_limit_names_its_line() -> None:
    assert problems(BASE.replace("    duration: 2\n", "    duration: 181\n")) == [
        "big.yaml:13: scenes[0].duration: Input should be less than or equal to 180, got 181"]


def test_more_than_fifty_scenes_are_refused() -> None:
    assert problems(BASE + scenes(50, 0.5)) == [
        "big.yaml:11: scenes: at most 50 allowed, got 51"]


def test_more_than_forty_layers_in_a_scene_are_refused() -> None:
    layers = "".join("      - {kind: rect, box: [0, 0, 10, 10]}\n" for _ in range(39))
    assert problems(BASE.replace("    layers:\n", "    layers:\n" + layers)) == [
        "big.yaml:16: scenes[0].layers: at most 40 allowed, got 41"]


@pytest.mark.parametrize(("size", "fps"), [("[3842, 2160]", 10), ("[320, 180]", 61), ("[320, 180]", 0)])
def test_sizes_and_rates_outside_the_range_are_refused(size: str, fps: int) -> None:
    text = BASE.replace("size: [320, 180]", f"size: {size}").replace("fps: 10", f"fps: {fps}")
    assert len(problems(text)) == 1


def test_too_many_pixels_for_the_length_are_refused() -> None:
    text = BASE.replace("size: [320, 180]", "size: [3840, 2160]").replace("fps: 10", "fps: 60")
    assert problems(text + scenes(1, 60)) == [
        "big.yaml:2: size: 3840x2160 at 60 fps for 62 s is too many pixels to render: at most 1920x1080 "
        "at 60 fps for 180 s, or as many pixels (4K at 30 fps for 90 s)"]


def test_the_largest_allowed_storyboard_loads() -> None:
    text = BASE.replace("size: [320, 180]", "size: [1920, 1080]").replace("fps: 10", "fps: 60")
    board = parse_storyboard(text + scenes(49, 178 / 49), path="big.yaml")
    assert round(board.duration) == 180
