"""Offline rendering: a video in, an explained video out (`python -m engine render`).

Views: `overlay`, `preserved`, `destroyed`, or `grid` (2 x 2: overlay, mask, preserved, destroyed, each at half
size, captioned). Frames are explained in batches. The output file is released whatever happens, so an
interrupted render (Ctrl+C, an error) leaves a playable video of the frames done so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from engine.contract import RENDER_VIEWS, Explanation
from engine.video import VideoReader, VideoWriter

if TYPE_CHECKING:
    from engine.api import Explainer


@dataclass
class RenderResult:
    path: Path
    frames: int
    complete: bool  # False when the render stopped before the end of the input


def compose_view(explanation: Explanation, view: str) -> np.ndarray:
    """The output frame (H, W, 3) uint8 RGB for one explanation."""
    if view == "overlay":
        frame = explanation.overlay.copy()
        if explanation.box is not None:
            x0, y0, x1, y1 = explanation.box
            cv2.rectangle(frame, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 2)
        return _caption(frame, explanation.target_name)
    if view in ("preserved", "destroyed"):
        return getattr(explanation, view)
    if view != "grid":
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    height, width = explanation.frame.shape[:2]
    half = (max(width // 2, 1), max(height // 2, 1))
    tiles = [
        _caption(cv2.resize(explanation.overlay, half, interpolation=cv2.INTER_AREA), explanation.target_name),
        _caption(cv2.resize(explanation.mask_image, half, interpolation=cv2.INTER_AREA), "mask"),
        _caption(cv2.resize(explanation.preserved, half, interpolation=cv2.INTER_AREA), "preserved"),
        _caption(cv2.resize(explanation.destroyed, half, interpolation=cv2.INTER_AREA), "destroyed"),
    ]
    return np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    if tile.shape[0] < 40 or tile.shape[1] < 80:
        return tile  # too small for legible text
    tile = np.ascontiguousarray(tile)
    cv2.putText(tile, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def render(
    explainer: Explainer,
    source: str | Path,
    output: str | Path,
    target: int | str = "auto",
    view: str = "grid",
    batch: int = 8,
    max_frames: int | None = None,
    progress: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> RenderResult:
    """Explain every frame of `source` with `explainer` (an engine.api.Explainer) and write `output` (.mp4).

    `on_frame(frames_written)` is called after each written frame (tests use it to interrupt a render).
    """
    if view not in RENDER_VIEWS:
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    output = Path(output)
    with VideoReader(source) as reader:
        total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
        size = (reader.width, reader.height)
        if view == "grid":
            size = (max(reader.width // 2, 1) * 2, max(reader.height // 2, 1) * 2)
        bar = tqdm(total=total, unit="frame", desc=f"render {Path(source).name}", disable=not progress)
        written = 0
        complete = False
        with VideoWriter(output, reader.fps, size) as writer, bar:
            pending: list[np.ndarray] = []
            for frame in reader:
                if max_frames is not None and written + len(pending) >= max_frames:
                    break
                pending.append(frame)
                if len(pending) == batch:
                    written = _flush(explainer, pending, target, view, writer, bar, on_frame)
                    pending = []
            if pending:
                written = _flush(explainer, pending, target, view, writer, bar, on_frame)
            complete = True
    return RenderResult(output, written, complete)


def _flush(
    explainer: Explainer,
    frames: list[np.ndarray],
    target: int | str,
    view: str,
    writer: VideoWriter,
    bar: tqdm,
    on_frame: Callable[[int], None] | None,
) -> int:
    targets: list[int | str] = [target] * len(frames)
    explanations = explainer.explain_batch(frames, targets, evidence=False)
    for explanation in explanations:
        writer.write(compose_view(explanation, view))
        bar.update(1)
        if on_frame is not None:
            on_frame(writer.frames)
    return writer.frames
