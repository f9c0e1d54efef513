"""Record while live: the views as shown, with their caption, to an H.264 MP4 while the source plays (any source:
a file, a camera, a stream). File > Record live view (Ctrl+R) or the player's Record button, bound to
AppState.recording.

What is recorded is what was shown: the window hands over each result after painting it (`on_shown`), with the
numbers the evidence panel shows beside it (the frame's probability, and the newest evidence check of the same
class with which frame it was made on); the recorder's thread composes the layout on screen (engine.runtime.views,
as snapshots and exports; views at the size they were shown, the grid at most as large as the frame) and encodes it
(app/export/recorder.py: never waited for; what the encoder cannot take in time is left out and counted). Frames are
recorded only while playing; a pause is cut out of the recording. Closing the window (or Ctrl+C, or a TERM) finishes
the file; a crash leaves it playable up to its last second. Opening another source ends the recording.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QSettings, QStandardPaths, pyqtSignal

from app.explaining.results import FrameResult, shown_evidence
from app.export.recorder import Recorder, RecordingOutcome
from app.state import AppState
from engine.contract import Evidence, Explanation
from engine.runtime.views import compose

MAX_GRID_SCALE = 0.5
"""The recording's grid is at most as large as the frame (each view at half its size), as the export's grid is."""


@dataclass(frozen=True)
class Shown:
    """One picture of the live view, as handed to the recorder's thread."""

    explanation: Explanation
    layout: str
    box: bool
    caption: tuple[str, ...] | None


def recording_folder(store: QSettings) -> Path:
    """Where recordings go: remembered, else the user's Videos folder."""
    stored = store.value("recording_folder")
    if stored:
        return Path(str(stored))
    videos = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())
    return Path(videos) / "live-saliency"


def shown_caption(explanation: Explanation, probabilities: dict[str, float] | None, age: str) -> tuple[str, ...]:
    """The class and the numbers of the evidence panel, as a caption (None `probabilities`: the check is off)."""
    if probabilities is None:
        return explanation.target_name, f"frame {explanation.target_probability:.3f}"
    if "preserved" not in probabilities:
        return explanation.target_name, f"frame {probabilities['frame']:.3f}", f"evidence {age}"
    numbers = "  ".join(f"{name} {probabilities[name]:.3f}" for name in ("frame", "preserved", "destroyed"))
    return explanation.target_name, numbers, age


def grid_scale(explanation: Explanation, layout: str) -> float:
    """The size of each view of the recording's grid relative to the frame: as shown, at most MAX_GRID_SCALE."""
    shown = explanation.view_size[0] / explanation.frame.shape[1]
    return min(shown / 2 if layout != "grid" else shown, MAX_GRID_SCALE)


class LiveRecording(QObject):
    """One recording at a time, started and stopped through AppState.recording."""

    message = pyqtSignal(str)  # how it went (status bar)
    failure = pyqtSignal(str, str)  # (title, text)

    def __init__(self, state: AppState, store: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.store = store
        self.recorder: Recorder[Shown] | None = None
        self.outcome: RecordingOutcome | None = None  # of the last recording finished
        self.shown = 0  # pictures shown while recording (offered to the recorder)
        self._path: Path | None = None  # where the next recording goes (None: a new name in the folder)
        self._generation: int | None = None  # the source recorded
        self._scale = 0.0
        self._paused = False
        state.subscribe(self._on_state)

    # -- start and stop -------------------------------------------------------------------------------------------
    def start(self, path: str | Path | None = None) -> None:
        """Record from the next frame shown, to `path` (None: a time-stamped file in the recording folder)."""
        self._path = Path(path).with_suffix(".mp4") if path is not None else None
        self.state.update(recording=True)

    def stop(self) -> RecordingOutcome | None:
        """Finish the file being recorded; the outcome of the last recording finished (None: none yet)."""
        self.state.update(recording=False)
        return self.outcome

    def _begin(self) -> None:
        if self.state.source_kind == "image":  # (nothing open yet: the recording waits for the first frame)
            self.state.update(recording=False)
            self.failure.emit("Record", "Open a video, a camera or a stream first: a still image does not play.")
            return
        self.outcome, self.shown, self.recorder, self._generation = None, 0, None, None
        self._paused = not self.state.playing
        self.message.emit("Recording the live view from the next frame shown...")

    def _end(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        outcome = self.outcome = recorder.finish()
        if outcome.written == 0:
            self.message.emit("Nothing was recorded: no explained frame was shown while playing")
            return
        left_out = (
            f"; {outcome.left_out} frames shown were left out (the encoder fell behind)" if outcome.left_out else ""
        )
        text = f"Recorded {outcome.written} frames ({outcome.seconds:.1f} s) to {outcome.path}{left_out}"
        if outcome.error:
            self.failure.emit("Recording stopped", f"{outcome.error}\n\n{text} (playable up to there).")
        else:
            self.message.emit(text)

    # -- what the window hands over -------------------------------------------------------------------------------
    def on_shown(self, result: FrameResult, evidence: Evidence | None) -> None:
        """A result on screen, with the newest evidence check (the numbers of the evidence panel)."""
        state, explanation = self.state, result.explanation
        if not state.recording or not state.playing or explanation is None:
            return
        if self._generation is not None and result.generation != self._generation:
            self.stop()  # another source: its frames belong to another recording
            return
        recorder = self.recorder or self._open(result, explanation)
        if recorder is None:
            return
        caption = None
        if state.caption:
            probabilities, age = shown_evidence(result, evidence) if state.evidence else (None, "")
            caption = shown_caption(explanation, probabilities, age)
        if self._paused:
            recorder.times.resume()
            self._paused = False
        self.shown += 1
        recorder.offer(
            Shown(explanation, state.layout, state.show_box, caption), result.frame_index, time.perf_counter()
        )
        if recorder.error:
            self.stop()

    def _open(self, result: FrameResult, explanation: Explanation) -> Recorder[Shown] | None:
        path = self._path or recording_folder(self.store) / f"recording-{datetime.now():%Y%m%d-%H%M%S}.mp4"
        self._path = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.state.update(recording=False)
            self.failure.emit("Record", f"Cannot write in {path.parent}: {error.strerror or error}")
            return None
        self._generation = result.generation
        self._scale = grid_scale(explanation, self.state.layout)
        self.recorder = Recorder(path, self.state.fps, self._picture)
        self.message.emit(f"Recording to {path} (Ctrl+R stops)")
        return self.recorder

    def _picture(self, shown: Shown) -> np.ndarray:
        """The recorder's thread: the layout as shown, as large as the recording's grid (one view alone: twice the
        size of a view in the grid; the recorder scales the pixel a rounding may leave)."""
        scale = self._scale if shown.layout == "grid" else 2 * self._scale
        return compose(shown.explanation, shown.layout, scale=scale, box=shown.box, titles=True, caption=shown.caption)

    # -- the state ------------------------------------------------------------------------------------------------
    def _on_state(self, changed: set[str]) -> None:
        if "recording" in changed:
            if self.state.recording:
                self._begin()
            else:
                self._end()
        if "playing" in changed and not self.state.playing:
            self._paused = True

    def status_text(self) -> str:
        """For the status bar: the recording's length so far and what was left out ("" when not recording)."""
        recorder = self.recorder
        if not self.state.recording:
            return ""
        if recorder is None:
            return "\u25cf REC (waiting for a frame)"
        last = recorder.times.last
        seconds = 0.0 if last is None else (last + 1) / recorder.fps
        left_out = f", {recorder.left_out} left out" if recorder.left_out else ""
        return f"\u25cf REC {int(seconds // 60)}:{seconds % 60:04.1f}{left_out}"

    def close(self) -> RecordingOutcome | None:
        """Closing the app: the file is finished."""
        return self.stop()
