"""Export the open video as an explained video through the engine's renderer (engine.render), in a thread of its
own with a progress dialog that can cancel. A cancelled export leaves a playable file of the frames done so far.

The export builds its own Explainer (the live pipeline keeps its own and is paused meanwhile), with the model,
backend, target, fill and opacity on screen.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt, QThread, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QProgressDialog

from engine.errors import SaliencyError

if TYPE_CHECKING:
    from app.window import MainWindow

RENDER_VIEWS = ("grid", "overlay", "preserved", "destroyed")  # engine.render's views (no "mask" alone)


@dataclass(frozen=True)
class ExportRequest:
    source: Path
    output: Path
    model_path: str | None
    backend: str
    target: int | str
    view: str
    fill: str
    opacity: float


@dataclass(frozen=True)
class ExportOutcome:
    output: Path
    frames: int
    complete: bool  # False: cancelled, the file holds the frames written so far


class _Cancelled(Exception):
    pass


class ExportJob(QThread):
    progress = pyqtSignal(int)  # frames written so far
    done = pyqtSignal(object)  # ExportOutcome
    failed = pyqtSignal(str)

    def __init__(self, request: ExportRequest, parent: MainWindow | None = None) -> None:
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
            from engine.render import render

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
            raise _Cancelled  # engine.render closes the file on the way out: what was written stays playable


def export_video(window: MainWindow) -> None:
    """File > Export explained video: ask where, then export with a progress dialog."""
    state = window.state
    if state.source_kind != "video" or not state.last_file:
        window.report_problem("Export", "Open a video file first: only video files can be exported.")
        return
    source = Path(state.last_file)
    suggestion = str(source.with_name(f"{source.stem}-explained.mp4"))
    output, _ = QFileDialog.getSaveFileName(window, "Export explained video", suggestion, "MP4 video (*.mp4)")
    if output:
        start_export(window, Path(output))


def start_export(window: MainWindow, output: Path) -> ExportJob | None:
    """Export the open video to `output`; returns the running job (None when there is nothing to export)."""
    state = window.state
    if state.source_kind != "video" or not state.last_file:
        window.report_problem("Export", "Open a video file first: only video files can be exported.")
        return None
    if window.controller.model is None:
        window.report_problem("Export", "No model is loaded: load one with File \u203a Open model... first.")
        return None
    view = state.layout if state.layout in RENDER_VIEWS else "grid"
    request = ExportRequest(
        Path(state.last_file),
        output.with_suffix(".mp4"),
        state.model_path,
        state.backend,
        state.target_request,
        view,
        state.fill,
        state.opacity,
    )
    state.update(playing=False)  # the export needs the CPU (or GPU) more than the live view
    job = ExportJob(request, window)
    dialog = QProgressDialog(
        f"Exporting {request.source.name} ({view} view) to {request.output.name}...",
        "Cancel",
        0,
        state.frame_count or 0,
        window,
    )
    dialog.setWindowTitle("Export explained video")
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setValue(0)
    dialog.show()  # at once: building the export's model takes a while before the first frame
    job.progress.connect(dialog.setValue)
    dialog.canceled.connect(job.cancel)

    def finish(outcome: ExportOutcome) -> None:
        dialog.close()
        if outcome.complete:
            window.status.show_info(f"Exported {outcome.frames} frames to {outcome.output}", 15000)
        else:
            window.status.show_info(
                f"Export cancelled: {outcome.output} holds the first {outcome.frames} frames", 15000
            )

    def fail(text: str) -> None:
        dialog.close()
        window.report_problem("Export failed", text)

    job.done.connect(finish)
    job.failed.connect(fail)
    window.export_job = job
    window.export_dialog = dialog
    job.start()
    return job
