"""What the scheduler reports, and through what (plain data, no Qt): the results and notices of the pipeline's thread,
read by the Qt worker, the window and the tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.contract import ClassInfo, Evidence, Explanation


@dataclass(frozen=True)
class SourceInfo:
    generation: int  # counts the sources opened; results of an older source are ignored
    kind: str
    label: str
    frame_count: int | None
    fps: float
    note: str = ""  # e.g. why the demo clip plays instead of a webcam
    path: str = ""  # the file, for video and image sources


@dataclass(frozen=True)
class ModelInfo:
    description: str
    backend: str
    backend_reason: str
    classes: tuple[ClassInfo, ...]


@dataclass
class FrameResult:
    generation: int
    frame_index: int | None
    frame: np.ndarray  # (H, W, 3) uint8 RGB
    explanation: Explanation | None  # None while no model is loaded
    captured_at: float
    done_at: float


@dataclass
class WorkerStats:
    """Read by the GUI's status timer (plain attributes: a torn read only shows a stale number)."""

    explained_fps: float = 0.0
    model_ms: float = 0.0  # the engine's own per-frame time ("total" of Explanation.timings_ms)
    dropped: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outlets:
    """Where the scheduler reports, each called from the pipeline's thread."""

    result_ready: Callable[[], None]  # take it with take_result()
    source_opened: Callable[[SourceInfo], None]
    source_changed: Callable[[SourceInfo], None]  # the same source with a corrected frame count
    source_failed: Callable[[str], None]  # a source did not open (the one playing before goes on)
    source_lost: Callable[[str], None]  # the source broke mid-stream (a camera unplugged) and is closed
    source_notice: Callable[[str], None]  # something to know about the source, said once (a file that ends early)
    model_loading: Callable[[str], None]
    model_ready: Callable[[ModelInfo], None]
    model_failed: Callable[[str], None]
    backend_failed: Callable[[str], None]  # a backend asked for by name cannot run (instead of model_failed)
    playback_ended: Callable[[], None]  # the end of a file, not looping
    error: Callable[[str], None]  # anything else that went wrong; the scheduler goes on
    evidence_ready: Callable[[Evidence], None] = lambda evidence: None  # from the evidence stream's thread
