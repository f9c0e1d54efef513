"""Snapshots: the views on screen as one PNG, composed by the engine's one view composer (engine.runtime.views), with
the same caption as exports (the class and its three probabilities) unless it is turned off."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from engine.contract import Explanation
from engine.runtime.views import caption_parts, compose


def snapshot_image(
    frame: np.ndarray,
    explanation: Explanation | None,
    layout: str = "grid",
    show_box: bool = False,
    caption: bool = False,
    checked: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The picture to save, (H, W, 3) uint8 RGB: the layout on screen with every view at frame resolution and
    titled, the box when it is on, with `caption` the class and its probabilities along the bottom (those of the
    live evidence check `checked` of this frame, when there is one; else the frame's alone); the bare frame while
    no model explains it."""
    if explanation is None:
        return np.ascontiguousarray(frame)
    from engine.api import full_resolution  # the live views are made at the size shown: make them again, full size

    full = full_resolution(explanation)
    if checked is not None:
        full = replace(full, probabilities=dict(checked))
    text = caption_parts(full) if caption else None
    return compose(full, layout, scale=1.0, box=show_box, titles=True, caption=text)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
