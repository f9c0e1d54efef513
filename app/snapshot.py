"""Snapshots: the views on screen as one PNG, composed by the engine's one view composer (engine.views)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.contract import Explanation
from engine.views import compose


def snapshot_image(
    frame: np.ndarray, explanation: Explanation | None, layout: str = "grid", show_box: bool = False
) -> np.ndarray:
    """The picture to save, (H, W, 3) uint8 RGB: the layout on screen with every view at frame resolution and
    titled, the box when it is on; the bare frame while no model explains it."""
    if explanation is None:
        return np.ascontiguousarray(frame)
    from engine.api import full_resolution  # the live views are made at the size shown: make them again, full size

    return compose(full_resolution(explanation), layout, scale=1.0, box=show_box, titles=True)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
