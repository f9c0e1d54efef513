"""Offline rendering: a video in, an explained video out (`python -m engine render`, the app's export).

Views: `overlay`, `preserved`, `destroyed`, or `grid` (2 x 2: overlay, mask, preserved, destroyed, each at half
size, titled), composed by engine.views with the class explained as caption; the overlay alone carries the box
around mask >= 0.5. Frames are explained in batches. The output file is released whatever happens, so an
interrupted render (Ctrl+C, an error) leaves a playable video of the frames done so far. A truncated input is
rendered as far as it goes, then one note (`on_note`; by default one line on stderr) says that it ended early.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from engine.contract import RENDER_VIEWS, Explanation
from engine.video import VideoReader, VideoWriter
from engine.views import compose, composed_size

if TYPE_CHECKING:
    from engine.api import Explainer


@dataclass
class RenderResult:
    path: Path
    frames: int
    complete: bool  # False when the render stopped before the end of the input


def render_scale(view: str) -> float:
    """The size of each view relative to the frame: the grid of four is as large as the input."""
    return 0.5 if view == "grid" else 1.0


def render_frame(explanation: Explanation, view: str) -> np.ndarray:
    """One output frame (H, W, 3) uint8 RGB: engine.views.compose with the renderer's choices."""
    if view not in RENDER_VIEWS:
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    return compose(
        explanation,
        view,
        scale=render_scale(view),
        box=view == "overlay",
        titles=view == "grid",
        caption=explanation.target_name,
    )


def _print_note(line: str) -> None:
    print(f"note: {line}", file=sys.stderr)


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
    on_note: Callable[[str], None] = _print_note,
) -> RenderResult:
    """Explain every frame of `source` with `explainer` (an engine.api.Explainer) and write `output` (.mp4).

    `on_frame(frames_written)` is called after each written frame (tests use it to interrupt a render, the app's
    export to show progress and to cancel). `on_note(line)` hears once that the input ended early.
    """
    if view not in RENDER_VIEWS:
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    output = Path(output)
    with VideoReader(source) as reader:
        total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
        size = composed_size((reader.width, reader.height), view, render_scale(view))
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
        if reader.truncation is not None:
            on_note(reader.truncation)
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
        writer.write(render_frame(explanation, view))
        bar.update(1)
        if on_frame is not None:
            on_frame(writer.frames)
    return writer.frames
