"""Snapshots: the views on screen as one PNG (numpy + OpenCV, no Qt, so it is tested headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.state import VIEW_TITLES, VIEWS

_ARRAYS = {"overlay": "overlay", "mask": "mask_image", "preserved": "preserved", "destroyed": "destroyed"}


def compose(frame: np.ndarray, explanation: Any | None, layout: str = "grid", show_box: bool = False) -> np.ndarray:
    """The picture to save, (H, W, 3) uint8 RGB: the 2x2 grid (each view at frame size) or one view."""
    if explanation is None:
        return np.ascontiguousarray(frame)
    views = {name: _titled(_view(explanation, name, show_box), VIEW_TITLES[name]) for name in VIEWS}
    if layout != "grid":
        return views[layout]
    top = np.hstack([views["overlay"], views["mask"]])
    bottom = np.hstack([views["preserved"], views["destroyed"]])
    return np.vstack([top, bottom])


def write_png(path: str | Path, image: np.ndarray) -> Path:
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def _view(explanation: Any, name: str, show_box: bool) -> np.ndarray:
    view = np.array(getattr(explanation, _ARRAYS[name]), dtype=np.uint8, copy=True)
    if show_box and name == "overlay" and explanation.box is not None:
        x0, y0, x1, y1 = explanation.box
        cv2.rectangle(view, (x0, y0), (x1, y1), (80, 255, 120), 2)
    return view


def _titled(view: np.ndarray, title: str) -> np.ndarray:
    # cv2's Hershey fonts are ASCII only: spell the Greek out
    text = title.replace("\u03a6", "Phi").replace("\u2212", "-")
    scale = max(view.shape[1] / 900.0, 0.4)
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = view[: height + baseline + 8, : width + 12]
    band[:] = (band * 0.4).astype(np.uint8)
    cv2.putText(view, text, (6, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (240, 240, 240), 1, cv2.LINE_AA)
    return view
