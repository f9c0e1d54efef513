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
    live_clock: str = ""  # live sources: what "behind live" counts from (FrameSource.live_clock); "" for files
    spec: str = ""  # what opens a camera or a stream again (camera:0@1280x720:30, rtsp://...); "" for files
    chosen: bool = True  # asked for by the user (not the camera or the demo clip the app started on)


@dataclass(frozen=True)
class ModelInfo:
    description: str
    backend: str
    backend_reason: str
    classes: tuple[ClassInfo, ...]


@dataclass(frozen=True)
class Played:
    """How the live view came to a frame's explanation (app/explaining/live_steadiness.py): a frame played in order
    from the file's first frame, none passed over, is explained exactly as the export and the timeline explain it."""

    since: int | None  # the frame its run started on (a jump, a loop, a change of settings); None: not a file frame
    passed_over: int = 0  # frames of the run playback passed over (late): the average never saw them
    steady: bool = True  # the explanation depends on earlier frames at all (a class held, or a mask average)

    def as_exported(self) -> bool:
        """Explained as the export and the timeline explain the frame: played in order from the first frame."""
        return not self.steady or (self.since == 0 and self.passed_over == 0)

    def note(self, index: int) -> str:
        """How frame `index` was explained otherwise than in the export ("" when it was not)."""
        if self.as_exported():
            return ""
        if self.since == index:
            return "explained alone after a jump or a change, not averaged with earlier frames"
        if self.passed_over:
            frames = "frame" if self.passed_over == 1 else "frames"
            return f"averaged over the frames shown ({self.passed_over} {frames} passed over while late)"
        return f"averaged from frame {self.since} on (after a jump), not from the first frame"


@dataclass
class FrameResult:
    generation: int
    frame_index: int | None
    frame: np.ndarray  # (H, W, 3) uint8 RGB
    explanation: Explanation | None  # None while no model is loaded
    captured_at: float
    done_at: float
    played: Played | None = None  # how the live view came to the explanation (None: nothing explained)
    live_at: float | None = None  # live sources: when the picture was live at its origin (perf_counter's clock)


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


def shown_evidence(result: FrameResult, evidence: Evidence | None) -> tuple[dict[str, float], str]:
    """The numbers the evidence panel shows with `result` on screen: the frame's probability of the target, and the
    newest evidence check of the same target (perhaps of a frame a little earlier), with which frame it was."""
    explanation = result.explanation
    assert explanation is not None
    probabilities = {"frame": explanation.target_probability}
    if evidence is None or evidence.tag != result.generation or evidence.target != explanation.target:
        return probabilities, "checking..."
    probabilities.update(preserved=evidence.probabilities["preserved"], destroyed=evidence.probabilities["destroyed"])
    return probabilities, evidence_age(evidence, result)


def evidence_age(evidence: Evidence, result: FrameResult) -> str:
    """Which frame the evidence numbers were computed on, relative to the frame on screen."""
    if evidence.frame_index is not None and result.frame_index is not None:
        behind = result.frame_index - evidence.frame_index
        if behind == 0:
            return f"checked on this frame ({evidence.frame_index})"
        frames = "frame" if abs(behind) == 1 else "frames"
        when = "earlier" if behind > 0 else "later"
        return f"checked on frame {evidence.frame_index} ({abs(behind)} {frames} {when})"
    return f"checked {max(result.captured_at - evidence.frame_time, 0.0) * 1000:.0f} ms earlier"
