"""What part of a frame the model sees, and how it is made square: a region (a crop) and the aspect ratio choice.

The masking model and the black box take S x S images. A region (x0, y0, x1, y1) in the frame's pixels, x1 / y1
exclusive, is cut out first, so a small object in a wide scene reaches the model at its full input size. A picture
that is not square is then either stretched to S x S ("stretch", what every frame got before) or padded to a
square first ("pad", the aspect ratio kept): centred, the bands filled with the fill's colour (grey, black, or the
picture's mean colour for "blur", what a strong blur of nothing tends to). The views are cut back to the picture
afterwards (`unpad`), so they show the region at its own aspect ratio; the model's input and mask stay as the model
saw them (the evidence check is computed from those).

Numpy only (no torch): the app calls it through engine.api, and the CPU runtime never loads torch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import numpy as np

from engine.contract import ASPECTS, Explanation
from engine.runtime.composite_host import GREY, mask_box
from engine.runtime.composite_host import full_resolution as views_at_frame_size

MIN_REGION: Final = 8  # pixels: a smaller drag is a click, not a region

Region = tuple[int, int, int, int]  # (x0, y0, x1, y1) in the frame's pixels, x1 / y1 exclusive


def as_rgb_frame(frame: object) -> np.ndarray:
    """(H, W, 3) uint8 RGB from RGB, greyscale (H, W) / (H, W, 1) or RGBA (H, W, 4); ValueError otherwise."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"a frame must be a numpy array, not {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 (0..255), not {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"a frame must be (H, W, 3) RGB, (H, W) / (H, W, 1) grey or (H, W, 4) RGBA, not {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


def check_aspect(aspect: str) -> str:
    if aspect not in ASPECTS:
        raise ValueError(f"aspect must be one of {ASPECTS}, not {aspect!r}")
    return aspect


def clip_region(region: Region, frame_size: tuple[int, int]) -> Region | None:
    """`region` inside a (width, height) frame; None when less than MIN_REGION pixels of it are left either way."""
    width, height = frame_size
    x0, x1 = sorted((min(max(int(region[0]), 0), width), min(max(int(region[2]), 0), width)))
    y0, y1 = sorted((min(max(int(region[1]), 0), height), min(max(int(region[3]), 0), height)))
    if x1 - x0 < MIN_REGION or y1 - y0 < MIN_REGION:
        return None
    return x0, y0, x1, y1


def crop(frame: np.ndarray, region: Region | None) -> np.ndarray:
    """The region of `frame` (the frame itself for None; a region left too small after clipping: the frame)."""
    if region is None:
        return frame
    clipped = clip_region(region, (frame.shape[1], frame.shape[0]))
    if clipped is None:
        return frame
    x0, y0, x1, y1 = clipped
    return np.ascontiguousarray(frame[y0:y1, x0:x1])


def pad_colour(picture: np.ndarray, fill: str) -> np.ndarray:
    """(3,) uint8: grey for "grey", black for "black", the picture's mean colour for "blur"."""
    if fill == "black":
        return np.zeros(3, np.uint8)
    if fill == "grey":
        return np.full(3, round(255 * GREY), np.uint8)
    return picture.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)


def pad_square(picture: np.ndarray, fill: str) -> tuple[np.ndarray, Region | None]:
    """`picture` centred in a square of its longer side, and where it lies in the square (None: it was square)."""
    height, width = picture.shape[:2]
    if width == height:
        return picture, None
    side = max(width, height)
    x0, y0 = (side - width) // 2, (side - height) // 2
    square = np.empty((side, side, 3), np.uint8)
    square[:] = pad_colour(picture, fill)
    square[y0 : y0 + height, x0 : x0 + width] = picture
    return square, (x0, y0, x0 + width, y0 + height)


def padded_view_size(picture_size: tuple[int, int], view_size: tuple[int, int] | None) -> tuple[int, int] | None:
    """The view size for the padded square of a (width, height) picture such that the picture, cut back out of it,
    is shown as large as it would be on its own in `view_size` (None: full size)."""
    if view_size is None:
        return None
    width, height = picture_size
    scale = min(view_size[0] / width, view_size[1] / height, 1.0)
    square = max(round(max(width, height) * scale), 1)
    return square, square


def framed(
    frame: np.ndarray, region: Region | None, aspect: str, fill: str, view_size: tuple[int, int] | None
) -> tuple[np.ndarray, Region | None, tuple[int, int] | None]:
    """What the pipeline prepares for a frame: the picture (region cut out, padded to a square for "pad"), where
    the picture lies in it (None: it is the picture), and the view size to prepare it at."""
    picture = crop(frame, region)
    if check_aspect(aspect) == "stretch":
        return picture, None, view_size
    square, content = pad_square(picture, fill)
    if content is None:
        return picture, None, view_size
    return square, content, padded_view_size((picture.shape[1], picture.shape[0]), view_size)


def unpad(explanation: Explanation, content: Region) -> Explanation:
    """The explanation of a padded square (`frame`) cut back to the picture at `content`: views, mask, box and the
    frame itself. The model's input and mask (`model_image`, `mask_low`) stay square: the evidence check reads them."""
    square = explanation.frame
    picture = np.ascontiguousarray(square[content[1] : content[3], content[0] : content[2]])
    scale = explanation.mask.shape[1] / square.shape[1]
    x0, y0, x1, y1 = (round(edge * scale) for edge in content)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def cut(view: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(view[y0:y1, x0:x1])

    mask = cut(explanation.mask)
    return replace(
        explanation,
        frame=picture,
        mask=mask,
        overlay=cut(explanation.overlay),
        mask_image=cut(explanation.mask_image),
        preserved=cut(explanation.preserved),
        destroyed=cut(explanation.destroyed),
        box=mask_box(mask),
        padded=True,
    )


def full_resolution(explanation: Explanation) -> Explanation:
    """engine.runtime.composite_host.full_resolution for any explanation: a padded one is made again on its padded
    square and cut back, so that the full-size views are the live ones, larger."""
    if not explanation.padded or explanation.mask.shape == explanation.frame.shape[:2]:
        return views_at_frame_size(explanation)
    picture = explanation.frame
    square, content = pad_square(picture, explanation.fill)
    if content is None:
        return views_at_frame_size(explanation)
    return unpad(views_at_frame_size(replace(explanation, frame=square, padded=False)), content)
