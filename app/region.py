"""Explain a region: a rectangle dragged on a view, turned into a region of the frame (plain Python, no Qt).

The views show the whole frame or the region explained now, at the size they are shown; a drag is in the shown
picture's pixels. `frame_region` maps it back to the frame's pixels, so a drag inside a region narrows it further.
Regions are (x0, y0, x1, y1) in the frame's pixels, x1 / y1 exclusive (engine.runtime.framing).
"""

from __future__ import annotations

from engine.runtime.framing import MIN_REGION, Region


def frame_region(
    drag: tuple[float, float, float, float],
    picture_size: tuple[int, int],
    frame_size: tuple[int, int],
    current: Region | None,
) -> Region | None:
    """The frame's region under `drag` (x0, y0, x1, y1 in the shown picture's pixels, any corner order) on a picture
    of `picture_size` (width, height) showing `current` (None: the whole frame of `frame_size`). None when the drag
    covers less than MIN_REGION frame pixels either way (a click, not a region)."""
    shown = current if current is not None else (0, 0, frame_size[0], frame_size[1])
    scale_x = (shown[2] - shown[0]) / max(picture_size[0], 1)
    scale_y = (shown[3] - shown[1]) / max(picture_size[1], 1)
    left, right = sorted((drag[0], drag[2]))
    top, bottom = sorted((drag[1], drag[3]))
    x0 = _clamp(shown[0] + round(left * scale_x), shown[0], shown[2])
    x1 = _clamp(shown[0] + round(right * scale_x), shown[0], shown[2])
    y0 = _clamp(shown[1] + round(top * scale_y), shown[1], shown[3])
    y1 = _clamp(shown[1] + round(bottom * scale_y), shown[1], shown[3])
    if x1 - x0 < MIN_REGION or y1 - y0 < MIN_REGION:
        return None
    return x0, y0, x1, y1


def region_text(region: Region | None) -> str:
    if region is None:
        return "Explaining the whole frame"
    x0, y0, x1, y1 = region
    return f"Explaining the region {x1 - x0}x{y1 - y0} at ({x0}, {y0}); Esc: the whole frame"


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)
