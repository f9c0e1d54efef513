"""Offline rendering: a video in, an explained video out (`python -m engine render`, the app's export).

Views: `overlay`, `preserved`, `destroyed`, or `grid` (2 x 2: overlay, mask, preserved, destroyed, each at half
size, titled), composed by engine.runtime.views; on request the box around mask >= 0.5 on the overlay, and unless asked
not to a caption with the class explained and the black box's probability of it on the frame, the preserved and the
destroyed view. The video is H.264 (engine.video.reader). Beside it, a CSV with one row per frame
(engine.video.frametable): offline work computes the evidence for every frame. Frames are explained in order and in
batches by engine.video.sequence, steadily unless asked not to (engine.runtime.temporal's SteadyRun, as the app's live
view: the class held in "auto", the mask averaged over time; `Steadiness(steady_class=False, smooth=1.0)` is each frame
on its own).

The output files are finished whatever happens, so an interrupted render (Ctrl+C, an error) leaves a playable video
and the table of the frames done so far. A truncated input is rendered as far as it goes, then one note
(`on_note`; by default one line on stderr) says that it ended early.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from engine.classes import resolve_target
from engine.contract import AUTO, RENDER_VIEWS, Explanation
from engine.runtime.framing import Region, clip_region
from engine.runtime.temporal import Steadiness
from engine.runtime.views import caption_parts, compose, composed_size
from engine.video.frametable import FrameRecord, FrameTableWriter
from engine.video.reader import VideoReader, VideoWriter
from engine.video.sequence import SequenceExplainer

if TYPE_CHECKING:
    from engine.api import Explainer


@dataclass
class RenderResult:
    path: Path
    frames: int
    complete: bool  # False when the render stopped before the end of the input
    table: Path | None = None  # the CSV of per-frame numbers, when one was written
    frames_explained_again: int = 0  # after a class change inside a batch (steady "auto")


def render_scale(view: str) -> float:
    """The size of each view relative to the frame: the grid of four is as large as the input."""
    return 0.5 if view == "grid" else 1.0


def render_frame(
    explanation: Explanation, view: str, *, box: bool = False, caption: bool = True, note: str = ""
) -> np.ndarray:
    """One output frame (H, W, 3) uint8 RGB: engine.runtime.views.compose with the renderer's choices; `note`, with
    the caption, is one more part of it (e.g. how the app showed this frame otherwise)."""
    if view not in RENDER_VIEWS:
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    parts = (*caption_parts(explanation), *((note,) if note else ())) if caption else None
    return compose(explanation, view, scale=render_scale(view), box=box, titles=view == "grid", caption=parts)


def picture_size(frame_size: tuple[int, int], region: Region | None) -> tuple[int, int]:
    """(width, height) of what is explained of a frame: the region (as engine.runtime.framing clips it) or all."""
    clipped = None if region is None else clip_region(region, frame_size)
    if clipped is None:
        return frame_size
    x0, y0, x1, y1 = clipped
    return x1 - x0, y1 - y0


def table_path(output: str | Path) -> Path:
    """Where the per-frame table of a rendered video goes: beside it, same name, .csv."""
    return Path(output).with_suffix(".csv")


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
    *,
    box: bool = False,
    caption: bool = True,
    table: bool = True,
    steadiness: Steadiness = Steadiness(),
    aspect: str = "stretch",
    region: Region | None = None,
    notes: Mapping[int, str] | None = None,
) -> RenderResult:
    """Explain every frame of `source` with `explainer` (an engine.api.Explainer) and write `output` (.mp4), and
    with `table` its per-frame numbers beside it (`table_path`).

    `aspect` and `region` frame each picture as engine.runtime.framing does (with a region, the video shows that
    part of the frame, and the table's boxes are in its pixels). `notes`: frame index -> a line the caption adds on
    that frame. `on_frame(frames_written)` is called after each written frame (tests use it to interrupt a render,
    the app's export to show progress and to cancel). `on_note(line)` hears once that the input ended early.
    """
    if view not in RENDER_VIEWS:
        raise ValueError(f"view must be one of {RENDER_VIEWS}, not {view!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    output = Path(output)
    target_index = AUTO if target == AUTO else resolve_target(target, explainer.classes)
    # the evidence (two more black-box passes per frame) is for the table and the caption
    sequence = SequenceExplainer(explainer, target_index, steadiness, table or caption, aspect, region)
    notes = notes or {}
    with VideoReader(source) as reader, ExitStack() as outputs:
        total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
        size = composed_size(picture_size((reader.width, reader.height), region), view, render_scale(view))
        writer = outputs.enter_context(VideoWriter(output, reader.fps, size))
        rows = outputs.enter_context(FrameTableWriter(table_path(output))) if table else None
        bar = outputs.enter_context(
            tqdm(total=total, unit="frame", desc=f"render {Path(source).name}", disable=not progress)
        )
        for frames in reader.batches(batch, max_frames):
            for explanation in sequence.explain(frames):
                index = writer.frames
                writer.write(render_frame(explanation, view, box=box, caption=caption, note=notes.get(index, "")))
                if rows is not None:
                    rows.write(FrameRecord.of(index, reader.fps, explanation))
                bar.update(1)
                if on_frame is not None:
                    on_frame(writer.frames)
        written = writer.frames
    if reader.truncation is not None:
        on_note(reader.truncation)
    return RenderResult(output, written, True, table_path(output) if table else None, sequence.frames_explained_again)
