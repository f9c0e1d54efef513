"""The one view composer: an Explanation's pictures as one image (numpy + OpenCV, tested on arrays).

Used by the app's snapshots, `python -m engine render` and the app's export (through engine.tools.render), so the three
agree pixel for pixel on what a view, a title, the box and a caption look like.

    layout "grid": overlay | mask / preserved | destroyed (2 x 2); any name of VIEWS: that view alone
    scale:   the size of each view relative to the frame (0.5: a grid as large as the frame)
    box:     the box around mask >= 0.5 on the overlay (drawn inside its exclusive edges x1, y1)
    titles:  each view's name in its top-left corner
    caption: text along the bottom of the whole picture: `caption_parts` gives the class explained and the black
             box's probability of it on the frame, the preserved and the destroyed view; the parts share one line
             when they fit at a legible size, else each takes its own
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np

from engine.contract import VIEW_ARRAYS, VIEWS, Explanation

LAYOUTS: Final = ("grid", *VIEWS)
"""What a picture of an explanation shows: the 2x2 grid of the four views, or one of them large."""

VIEW_TITLES: Final = {
    "overlay": "Frame + mask",
    "mask": "Mask",
    "preserved": "Preserved  \u03a6(X, M)",
    "destroyed": "Destroyed  \u03a6(X, 1\u2212M)",
}
"""Each view's title, on screen (app) and in composed pictures (spelt in ASCII there: OpenCV's fonts have no Greek)."""

BOX_COLOUR: Final = (80, 255, 120)  # RGB, the same green as the box on screen
BOX_THICKNESS: Final = 2
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARGIN = 6  # pixels between text and the picture's edge
_MIN_TEXT_TILE = (80, 40)  # (width, height) below which text would cover the picture rather than name it
_LEGIBLE_SCALE = 0.4  # the smallest font scale a line is shrunk to before the caption breaks into lines
_SMALLEST_SCALE = 0.3  # below it a line is broken between words (a word too long cut) rather than shrunk
_OUTLINE_OFFSETS = tuple((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)


def compose(
    explanation: Explanation,
    layout: str = "grid",
    *,
    scale: float = 1.0,
    box: bool = False,
    titles: bool = True,
    caption: str | Sequence[str] | None = None,
) -> np.ndarray:
    """The picture of `explanation` in `layout`, (H', W', 3) uint8 RGB (a new array)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale}")
    height, width = explanation.frame.shape[:2]
    size = tile_size((width, height), scale)
    names = VIEWS if layout == "grid" else (layout,)
    tiles = {name: _tile(explanation, name, size, box, titles) for name in names}
    if layout == "grid":
        picture = np.vstack(
            [np.hstack([tiles["overlay"], tiles["mask"]]), np.hstack([tiles["preserved"], tiles["destroyed"]])]
        )
    else:
        picture = tiles[layout]
    if caption:
        draw_caption(picture, (caption,) if isinstance(caption, str) else tuple(caption))
    return picture


def caption_parts(explanation: Explanation) -> tuple[str, ...]:
    """The class explained, and the black box's probability of it on the frame, the preserved view and the
    destroyed view (the frame's alone, from the top 5, when the evidence was not computed)."""
    probabilities = explanation.probabilities
    if probabilities is not None:
        numbers = "  ".join(f"{name} {probabilities[name]:.3f}" for name in ("frame", "preserved", "destroyed"))
        return explanation.target_name, numbers
    on_frame = next((p for index, _, p in explanation.top5 if index == explanation.target), None)
    return (explanation.target_name,) if on_frame is None else (explanation.target_name, f"frame {on_frame:.3f}")


def tile_size(frame_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) of one view at `scale` of a (width, height) frame (at least one pixel)."""
    width, height = frame_size
    if scale == 1.0:
        return width, height
    return max(int(width * scale), 1), max(int(height * scale), 1)


def composed_size(frame_size: tuple[int, int], layout: str, scale: float = 1.0) -> tuple[int, int]:
    """(width, height) of what `compose` returns for frames of `frame_size` (a video writer needs it first)."""
    width, height = tile_size(frame_size, scale)
    return (2 * width, 2 * height) if layout == "grid" else (width, height)


def _tile(explanation: Explanation, name: str, size: tuple[int, int], box: bool, titles: bool) -> np.ndarray:
    picture: np.ndarray = getattr(explanation, VIEW_ARRAYS[name])
    tile: np.ndarray
    if (picture.shape[1], picture.shape[0]) == size:
        tile = np.array(picture, dtype=np.uint8, copy=True)  # a copy: drawing never touches the explanation
    else:
        tile = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    if box and name == "overlay" and explanation.box is not None:
        view_height, view_width = explanation.mask.shape[:2]  # the box is in the views' pixels
        draw_box(tile, _scaled_box(explanation.box, size[0] / view_width, size[1] / view_height))
    if titles:
        draw_text(tile, VIEW_TITLES[name])
    return tile


def _scaled_box(box: tuple[int, int, int, int], sx: float, sy: float) -> tuple[int, int, int, int]:
    """A box with exclusive edges, scaled outwards so that it still holds every pixel it held."""
    x0, y0, x1, y1 = box
    return int(np.floor(x0 * sx)), int(np.floor(y0 * sy)), int(np.ceil(x1 * sx)), int(np.ceil(y1 * sy))


def draw_box(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int] = BOX_COLOUR,
    thickness: int = BOX_THICKNESS,
) -> None:
    """Outline (x0, y0, x1, y1) in place, x1 / y1 exclusive: the lines lie inside the box, on its edge pixels."""
    height, width = image.shape[:2]
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[2], width), min(box[3], height)
    if x1 <= x0 or y1 <= y0:
        return
    image[y0 : min(y0 + thickness, y1), x0:x1] = colour
    image[max(y1 - thickness, y0) : y1, x0:x1] = colour
    image[y0:y1, x0 : min(x0 + thickness, x1)] = colour
    image[y0:y1, max(x1 - thickness, x0) : x1] = colour


def draw_text(image: np.ndarray, text: str, *, bottom: bool = False) -> None:
    """One line of light text with a dark outline in place, top-left (or bottom-left), sized to the picture's width
    and shrunk to fit it (wrapped, then cut, where even the smallest size does not fit); nothing on pictures too
    small for legible text."""
    _draw_lines(image, [text], bottom=bottom)


def draw_caption(image: np.ndarray, parts: tuple[str, ...]) -> None:
    """`parts` along the bottom of `image` in place: on one line when it fits legibly, else one line each."""
    line = " | ".join(parts)
    if len(parts) > 1 and _font_scale(image.shape[1], [line]) < _LEGIBLE_SCALE:
        _draw_lines(image, list(parts), bottom=True)
    else:
        _draw_lines(image, [line], bottom=True)


def _draw_lines(image: np.ndarray, lines: list[str], *, bottom: bool) -> None:
    height, width = image.shape[:2]
    if width < _MIN_TEXT_TILE[0] or height < _MIN_TEXT_TILE[1]:
        return
    font_scale, lines = _fitted(width, [_ascii(line) for line in lines])
    (_, line_height), baseline = cv2.getTextSize("Ag", _FONT, font_scale, 1)
    step = line_height + baseline + 6  # a gap between lines: outlines and anti-aliasing included, rows to spare
    lines = lines[: max((height - 2 * _MARGIN) // step, 1)]  # never more lines than the picture holds
    if bottom:
        first = height - _MARGIN - baseline - step * (len(lines) - 1)
    else:
        first = _MARGIN + line_height
    for number, line in enumerate(lines):
        x, y = _MARGIN, first + number * step
        # the outline: the same thin text shifted one pixel each way (a thicker stroke would also advance each
        # letter further in OpenCV, and the outline would drift away from the text along a long line)
        for dx, dy in _OUTLINE_OFFSETS:
            cv2.putText(image, line, (x + dx, y + dy), _FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, line, (x, y), _FONT, font_scale, (245, 245, 245), 1, cv2.LINE_AA)


def _room(width: int) -> int:
    """The pixels a line may take: the margins and the one-pixel outline on each side left out."""
    return width - 2 * _MARGIN - 2


def _text_width(line: str, font_scale: float) -> int:
    return int(cv2.getTextSize(line, _FONT, font_scale, 1)[0][0])


def _font_scale(width: int, lines: list[str]) -> float:
    """The scale for the picture's width (width / 800, within 0.4..1.2), smaller where the longest line needs it.

    Measured at each candidate scale, not extrapolated from one: OpenCV 5 draws Hershey text at whole-pixel
    heights, so a line's width grows in steps with the scale (at 0.36 a line is as wide as at 0.38), and a scale
    computed by proportion can still run past the edge."""
    room = _room(width)
    scale = min(max(width / 800.0, 0.4), 1.2)
    widest = max(lines, key=lambda line: _text_width(line, 1.0))
    scale = min(scale, room / max(_text_width(widest, 1.0), 1))
    while scale > 0.05 and _text_width(widest, scale) > room:
        scale -= 0.01
    return scale


def _fitted(width: int, lines: list[str]) -> tuple[float, list[str]]:
    """The font scale and the lines to draw: shrunk to fit, but not below the smallest legible scale; a line that
    still does not fit is broken between words, and a word that alone does not fit is cut with '...'. No line is
    ever drawn past the picture's right edge."""
    scale = _font_scale(width, lines)
    if scale >= _SMALLEST_SCALE:
        return scale, lines
    room = _room(width)
    fitted: list[str] = []
    for line in lines:
        fitted.extend(_wrapped(line, room, _SMALLEST_SCALE))
    return _SMALLEST_SCALE, fitted


def _wrapped(line: str, room: int, scale: float) -> list[str]:
    """`line` broken between words into lines no wider than `room` at `scale`."""
    wrapped: list[str] = []
    current = ""
    for word in line.split():
        candidate = f"{current} {word}" if current else word
        if _text_width(candidate, scale) <= room:
            current = candidate
            continue
        if current:
            wrapped.append(current)
        current = word if _text_width(word, scale) <= room else _cut(word, room, scale)
    if current:
        wrapped.append(current)
    return wrapped


def _cut(word: str, room: int, scale: float) -> str:
    """The longest start of `word` that fits in `room` with '...' after it."""
    for end in range(len(word) - 1, 0, -1):
        if _text_width(word[:end] + "...", scale) <= room:
            return word[:end] + "..."
    return ""


def _ascii(text: str) -> str:
    return text.replace("\u03a6", "Phi").replace("\u2212", "-")  # OpenCV's Hershey fonts are ASCII only
