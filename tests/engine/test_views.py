"""The one view composer (engine.runtime.views) on arrays: layouts, sizes, the box inside its exclusive edges, text."""

from __future__ import annotations

import numpy as np
import pytest

from engine.contract import VIEW_ARRAYS, VIEWS, Explanation
from engine.runtime.views import (
    BOX_COLOUR,
    LAYOUTS,
    caption_parts,
    compose,
    composed_size,
    draw_box,
    draw_caption,
    draw_text,
)

HEIGHT, WIDTH = 120, 160
BOX = (40, 30, 100, 90)  # x0, y0, x1, y1 (x1, y1 exclusive)


def explanation(
    box: tuple[int, int, int, int] | None = BOX,
    height: int = HEIGHT,
    width: int = WIDTH,
    probabilities: dict[str, float] | None = None,
) -> Explanation:
    """Four views of distinct flat colours (a flat picture shrinks to itself), so every tile is recognisable."""
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    views = {name: np.full((height, width, 3), 40 * (number + 1), np.uint8) for number, name in enumerate(VIEWS)}
    mask = np.zeros((height, width), np.float32)
    return Explanation(
        frame=frame,
        mask=mask,
        overlay=views["overlay"],
        mask_image=views["mask"],
        preserved=views["preserved"],
        destroyed=views["destroyed"],
        target=281,
        target_name="tabby",
        target_probability=0.5,
        box=box,
        top5=[(281, "tabby", 0.5)],
        probabilities=probabilities,
        timings_ms={},
        mask_low=np.zeros((56, 56), np.float32),
        model_image=np.zeros((224, 224, 3), np.uint8),
    )


def test_grid_places_each_view_and_single_layouts_are_that_view() -> None:
    source = explanation()
    grid = compose(source, "grid", titles=False)
    assert grid.shape == (2 * HEIGHT, 2 * WIDTH, 3) and grid.dtype == np.uint8
    corners = {"overlay": (0, 0), "mask": (0, WIDTH), "preserved": (HEIGHT, 0), "destroyed": (HEIGHT, WIDTH)}
    for name, (top, left) in corners.items():
        assert np.array_equal(grid[top : top + HEIGHT, left : left + WIDTH], getattr(source, VIEW_ARRAYS[name]))
    for name in VIEWS:
        single = compose(source, name, titles=False)
        assert np.array_equal(single, getattr(source, VIEW_ARRAYS[name]))
        assert single is not getattr(source, VIEW_ARRAYS[name])  # a new array: drawing never touches the views


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.3])
def test_composed_size_is_what_compose_returns(layout: str, scale: float) -> None:
    width, height = composed_size((WIDTH + 1, HEIGHT + 1), layout, scale)
    odd = explanation(height=HEIGHT + 1, width=WIDTH + 1)
    assert compose(odd, layout, scale=scale).shape == (height, width, 3)


def test_half_scale_grid_is_as_large_as_the_frame() -> None:
    grid = compose(explanation(), "grid", scale=0.5, titles=False)
    assert grid.shape == (HEIGHT, WIDTH, 3)
    assert np.array_equal(grid[: HEIGHT // 2, WIDTH // 2 :], np.full((HEIGHT // 2, WIDTH // 2, 3), 80, np.uint8))


def test_box_lies_on_the_edge_pixels_inside_its_exclusive_edges() -> None:
    source = explanation()
    overlay = compose(source, "overlay", box=True, titles=False)
    x0, y0, x1, y1 = BOX
    green = np.all(overlay == BOX_COLOUR, axis=2)
    rows, cols = np.nonzero(green)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == BOX  # not one pixel past x1 / y1
    assert green[y0, x0] and green[y1 - 1, x1 - 1] and green[(y0 + y1) // 2, x1 - 1]
    assert not green[(y0 + y1) // 2, (x0 + x1) // 2]  # an outline, not a filled box
    without = compose(source, "overlay", box=False, titles=False)
    assert np.array_equal(without[~green], overlay[~green])


def test_box_only_on_the_overlay_and_scaled_with_it() -> None:
    source = explanation()
    grid = compose(source, "grid", scale=0.5, box=True, titles=False)
    green = np.all(grid == BOX_COLOUR, axis=2)
    rows, cols = np.nonzero(green)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (20, 15, 50, 45)  # BOX at half size
    no_box = compose(explanation(box=None), "overlay", box=True, titles=False)  # an empty mask has no box
    assert not np.all(no_box == BOX_COLOUR, axis=2).any()


def test_draw_box_clips_to_the_picture() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    draw_box(image, (-5, 8, 30, 40), (255, 0, 0), 2)
    red = image[:, :, 0] == 255
    assert red[8:, :].all() and not red[:8, 1:9].any()


def test_titles_and_caption_mark_their_corners_only() -> None:
    source = explanation()
    plain = compose(source, "overlay", titles=False)
    titled = compose(source, "overlay", titles=True)
    changed = np.any(titled != plain, axis=2)
    assert changed[: HEIGHT // 4, : WIDTH // 2].any() and not changed[HEIGHT // 4 :, :].any()
    captioned = compose(source, "overlay", titles=False, caption="tabby 0.50")
    changed = np.any(captioned != plain, axis=2)
    assert changed[-HEIGHT // 4 :, : WIDTH // 2].any() and not changed[: -HEIGHT // 4, :].any()


def test_no_text_on_pictures_too_small_to_read_it() -> None:
    source = explanation()
    tiny = compose(source, "grid", scale=0.2, titles=True, caption="tabby")  # 32 x 24 tiles, 64 x 48 in all
    assert np.array_equal(tiny, compose(source, "grid", scale=0.2, titles=False))


def test_bad_layout_and_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        compose(explanation(), "sideways")
    with pytest.raises(ValueError, match="scale"):
        compose(explanation(), "grid", scale=0.0)


def test_the_caption_names_the_class_and_its_three_probabilities() -> None:
    evidence = {"frame": 0.5, "preserved": 0.4321, "destroyed": 0.0004}
    assert caption_parts(explanation(probabilities=evidence)) == (
        "tabby",
        "frame 0.500  preserved 0.432  destroyed 0.000",
    )
    assert caption_parts(explanation()) == ("tabby", "frame 0.500")  # no evidence: the frame's, from the top 5
    source = explanation()
    source.target, source.target_name = 7, "cock"  # not in the top 5
    assert caption_parts(source) == ("cock",)


def text_lines(picture: np.ndarray, background: int) -> list[tuple[int, int]]:
    """(first, last) row of each run of rows that hold anything but the background."""
    rows = np.flatnonzero(np.any(picture != background, axis=(1, 2)))
    breaks = np.flatnonzero(np.diff(rows) > 1)
    starts, ends = np.concatenate([[0], breaks + 1]), np.concatenate([breaks, [len(rows) - 1]])
    return [(int(rows[start]), int(rows[end])) for start, end in zip(starts, ends)]


def test_the_caption_takes_one_line_where_it_fits_and_one_per_part_where_not() -> None:
    parts = ("tabby", "frame 0.500  preserved 0.432  destroyed 0.000")
    wide = np.full((200, 800, 3), 128, np.uint8)
    draw_caption(wide, parts)
    narrow = np.full((200, 240, 3), 128, np.uint8)
    draw_caption(narrow, parts)
    assert len(text_lines(wide, 128)) == 1 and len(text_lines(narrow, 128)) == 2
    for picture in (wide, narrow):  # along the bottom, never past the right edge
        assert text_lines(picture, 128)[0][0] > 100 and not np.any(picture[:, -3:] != 128)


@pytest.mark.parametrize("width", [80, 97, 120, 160, 200, 240, 263, 320, 400, 517, 640, 800, 1280])
def test_no_text_is_ever_drawn_past_the_right_edge(width: int) -> None:
    """Any width, any caption: shrunk, else broken between words, else cut. (OpenCV 5 draws text at whole-pixel
    heights, so widths grow in steps with the font scale: a scale computed by proportion ran past the edge.)"""
    captions = [
        ("tabby", "frame 0.500  preserved 0.432  destroyed 0.000"),
        ("sulphur-crested cockatoo, Kakatoe galerita, Cacatua galerita", "frame 0.031  preserved 0.002"),
        ("Pneumonoultramicroscopicsilicovolcanoconiosis",),
    ]
    for parts in captions:
        picture = np.full((200, width, 3), 128, np.uint8)
        draw_caption(picture, parts)
        assert not np.any(picture[:, -3:] != 128), (width, parts)
        assert np.any(picture != 128)  # and something was drawn
    titled = np.full((60, width, 3), 128, np.uint8)
    draw_text(titled, "Destroyed  \u03a6(X, 1\u2212M) and a title far too long for a small tile")
    assert not np.any(titled[:, -3:] != 128)


def test_a_long_part_is_broken_between_words_when_it_does_not_fit() -> None:
    picture = np.full((200, 120, 3), 128, np.uint8)
    draw_caption(picture, ("tabby", "frame 0.500  preserved 0.432  destroyed 0.000"))
    assert len(text_lines(picture, 128)) >= 3 and not np.any(picture[:, -3:] != 128)


def test_the_outline_stays_with_its_text_along_a_long_line() -> None:
    """The dark outline is the light text shifted by one pixel, all along the line (a thicker stroke drifts)."""
    picture = np.full((60, 800, 3), 128, np.uint8)
    draw_caption(picture, ("pencil sharpener", "frame 0.155  preserved 0.437  destroyed 0.001"))
    light = np.flatnonzero(np.any(picture > 200, axis=(0, 2)))
    dark = np.flatnonzero(np.any(picture < 50, axis=(0, 2)))
    assert abs(int(dark.max()) - int(light.max())) <= 2 and abs(int(dark.min()) - int(light.min())) <= 2
