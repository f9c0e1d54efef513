"""File > Export explained video: the open video through the engine's renderer (engine.tools.render), in a thread.

The file is what `python -m engine render` writes: H.264 MP4 (engine.video.reader, PyAV's libx264), with the box when it
is on and, unless turned off (View > Caption), a caption with the class and its probability on the frame, the preserved
and the destroyed view (which makes the export compute the evidence check for every frame).

Export = what the app shows: the settings on screen (class or "auto", the steady class and the mask average of the
View menu, fill, aspect, region), every frame explained in order from the first, one at a time, through the same
steady run as the live view (engine.runtime.temporal.SteadyRun), so each frame gets the class, mask and numbers the
live view gives it when it plays the file in order, and the timeline's CSV holds the same rows. Where the live view
showed a frame otherwise (alone after a jump, or with frames passed over while playing late), the frame's caption
says so (`ExportRequest.notes`, from app/timeline/keeper.py).

`ExportJob` takes everything it needs in one `ExportRequest` (source, output, model, backend, target, view, fill,
opacity, box, caption, steadiness, aspect, region, notes) and reports by signals: progress, note, done, failed. It
builds its own Explainer (the live pipeline keeps its own and is paused meanwhile). Cancelling leaves a playable
file of the frames done so far. `ExportProgress` is the dialog that follows a job and can cancel it; `Exporter`
checks, asks where, runs one job with its dialog and says how it went by signals. Nothing here knows the main
window.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, Qt, QThread, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QProgressDialog, QWidget

from app import settings
from app.state import AppState
from engine.contract import RENDER_VIEWS
from engine.errors import SaliencyError
from engine.runtime.temporal import Steadiness


@dataclass(frozen=True)
class ExportRequest:
    source: Path
    output: Path
    model_path: str | None  # None: the bundled default model
    backend: str
    target: int  # a class index or AUTO
    view: str  # one of RENDER_VIEWS
    fill: str
    opacity: float
    box: bool = False  # the box around the mask, drawn on the overlay
    caption: bool = True  # the class and its probability on the frame, the preserved and the destroyed view
    steadiness: Steadiness = Steadiness()  # the class held in "auto" and the mask average (View menu)
    aspect: str = "stretch"  # a wide picture stretched or padded to the model's input (engine.runtime.framing)
    region: tuple[int, int, int, int] | None = None  # the part of the frame explained (None: all of it)
    notes: Mapping[int, str] = field(default_factory=dict)  # frame -> how the live view showed it otherwise


EXPORT_BATCH = 1
"""Frames explained at a time: one, as the live view and the timeline explain them, so that the same frames give the
same arithmetic (batching may round otherwise on some CPUs), at no cost (ONNX Runtime on the 2-core machine: batch 1
rendered box-720p.mp4 at 11.2 and 12.7 frames/s, batch 8 at 9.0 and 8.6, alternating in one run under load)."""


@dataclass(frozen=True)
class ExportOutcome:
    output: Path
    frames: int
    complete: bool  # False: cancelled, the file holds the frames written so far


def export_problem(state: AppState, model_loaded: bool) -> str | None:
    """Why the open source cannot be exported now (None: it can)."""
    if state.source_kind != "video" or not state.source_path:
        return "Open a video file first: only video files can be exported."
    if not model_loaded:
        return "No model is loaded: load one with File \u203a Open model... first."
    return None


def export_request(state: AppState, output: Path, notes: Mapping[int, str] | None = None) -> ExportRequest:
    """The open video with the settings on screen (a layout the renderer has not, the mask alone: the grid)."""
    view = state.layout if state.layout in RENDER_VIEWS else "grid"
    return ExportRequest(
        Path(state.source_path),
        output.with_suffix(".mp4"),
        state.model_path,
        state.backend,
        state.target,
        view,
        state.fill,
        state.opacity,
        state.show_box,
        state.caption,
        Steadiness.from_switches(state.steady_class, state.smooth_mask),
        state.aspect,
        state.region,
        dict(notes or {}),
    )


class _Cancelled(Exception):
    pass


class ExportJob(QThread):
    progress = pyqtSignal(int)  # frames written so far
    note = pyqtSignal(str)  # something to know, said once (e.g. the source ends before its header's count)
    done = pyqtSignal(object)  # ExportOutcome, complete or cancelled
    failed = pyqtSignal(str)

    def __init__(self, request: ExportRequest, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self._cancel = threading.Event()
        self._written = 0
        self.outcome: ExportOutcome | None = None  # set before `done` is emitted

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        request = self.request
        try:
            from engine.api import Explainer  # torch loads in this thread, as in the pipeline worker
            from engine.tools.render import render

            with Explainer(
                request.model_path, request.backend, fill=request.fill, opacity=request.opacity, evidence=False
            ) as explainer:
                if self._cancel.is_set():
                    raise _Cancelled
                result = render(
                    explainer,
                    request.source,
                    request.output,
                    request.target,
                    request.view,
                    progress=False,
                    on_frame=self._on_frame,
                    on_note=self.note.emit,
                    box=request.box,
                    caption=request.caption,
                    batch=EXPORT_BATCH,
                    steadiness=request.steadiness,
                    aspect=request.aspect,
                    region=request.region,
                    notes=request.notes,
                )
            self.outcome = ExportOutcome(result.path, result.frames, result.complete)
        except _Cancelled:
            self.outcome = ExportOutcome(request.output, self._written, False)
        except SaliencyError as error:
            self.failed.emit(str(error))
        except Exception as error:  # the user hears about it; the app goes on
            traceback.print_exc()
            self.failed.emit(f"Export failed: {type(error).__name__}: {error}")
        if self.outcome is not None:
            self.done.emit(self.outcome)

    def _on_frame(self, written: int) -> None:
        self._written = written
        self.progress.emit(written)
        if self._cancel.is_set():
            raise _Cancelled  # engine.tools.render closes the file on the way out: what was written stays playable


class ExportProgress(QProgressDialog):
    """Follows one job: frames written of `frame_count`; Cancel cancels the job; closes when the job ends."""

    def __init__(self, job: ExportJob, frame_count: int | None, parent: QWidget | None = None) -> None:
        request = job.request
        super().__init__(
            f"Exporting {request.source.name} ({request.view} view) to {request.output.name}...",
            "Cancel",
            0,
            frame_count or 0,
            parent,
        )
        self.setWindowTitle("Export explained video")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setValue(0)
        job.progress.connect(self.setValue)
        job.done.connect(lambda _outcome: self.close())
        job.failed.connect(lambda _text: self.close())
        self.canceled.connect(job.cancel)


def outcome_text(outcome: ExportOutcome) -> str:
    if outcome.complete:
        return f"Exported {outcome.frames} frames to {outcome.output}"
    return f"Export cancelled: {outcome.output} holds the first {outcome.frames} frames"


class Exporter(QObject):
    """One export at a time for the app: from AppState's open video and settings, with a progress dialog."""

    message = pyqtSignal(str)  # how it went, or a note on the way (status bar)
    failure = pyqtSignal(str, str)  # (title, text)

    def __init__(
        self,
        state: AppState,
        model_loaded: Callable[[], bool],
        parent: QWidget,
        notes: Callable[[], Mapping[int, str]] = dict,
        store: QSettings | None = None,
    ) -> None:
        """`notes`: frame -> how the live view showed it otherwise than the export will (the caption says it);
        `store`: where the folder saved to last is remembered (the Save dialog opens there)."""
        super().__init__(parent)
        self.state = state
        self._store = store
        self._model_loaded = model_loaded
        self._notes = notes
        self._dialog_parent = parent
        self.job: ExportJob | None = None  # the running (or last) export
        self.dialog: ExportProgress | None = None

    def export(self, output: str | Path | None = None) -> ExportJob | None:
        """Export to `output` (None: ask where); returns the running job, None when nothing is exported."""
        problem = export_problem(self.state, self._model_loaded())
        if problem is not None:
            self.failure.emit("Export", problem)
            return None
        if output is None:
            source = Path(self.state.source_path)
            folder = settings.save_folder(self._store) if self._store is not None else Path.home()
            suggestion = str(folder / f"{source.stem}-explained.mp4")  # (not the video's folder: it may be read-only)
            output, _ = QFileDialog.getSaveFileName(
                self._dialog_parent, "Export explained video", suggestion, "MP4 video (*.mp4)"
            )
            if not output:
                return None
            if self._store is not None:
                settings.remember_save_folder(self._store, Path(output))
        self.state.update(playing=False)  # the export needs the CPU (or GPU) more than the live view
        job = ExportJob(export_request(self.state, Path(output), self._notes()), self)
        self.dialog = ExportProgress(job, self.state.frame_count, self._dialog_parent)
        self.dialog.show()  # at once: building the export's model takes a while before the first frame
        job.note.connect(self.message)
        job.done.connect(lambda outcome: self.message.emit(outcome_text(outcome)))
        job.failed.connect(lambda text: self.failure.emit("Export failed", text))
        self.job = job
        job.start()
        return job

    def cancel_and_wait(self) -> None:
        """Closing the app: a QThread destroyed while it runs takes the process down."""
        if self.job is not None and self.job.isRunning():
            self.job.cancel()
            self.job.wait()
