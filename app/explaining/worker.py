"""PipelineWorker: the one QThread that runs the Scheduler (app/explaining/scheduler.py), and its signals.

The GUI thread never decodes video or runs the model: it posts requests here (they collapse, newest wins) and
hears back by signal; a result signal means "take it with take_result()". All the logic is in the Scheduler,
plain Python tested without Qt; this shell only gives it a thread and turns its reports into signals.
"""

from __future__ import annotations

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from app.explaining.loading import ModelLoad
from app.explaining.mailbox import ExplainParams, ModelSpec, SourceSpec
from app.explaining.results import FrameResult, Outlets, WorkerStats
from app.explaining.scheduler import Scheduler


class PipelineWorker(QThread):
    result_ready = pyqtSignal()  # take it with take_result()
    source_opened = pyqtSignal(object)  # SourceInfo
    source_changed = pyqtSignal(object)  # SourceInfo with a corrected frame count
    source_failed = pyqtSignal(str)  # a source did not open (the one playing before goes on)
    source_lost = pyqtSignal(str)  # the source broke mid-stream (a camera unplugged) and is closed
    source_notice = pyqtSignal(str)  # said once per source: e.g. a file that ends before its header's count
    model_loading = pyqtSignal(str)
    model_ready = pyqtSignal(object)  # ModelInfo
    model_failed = pyqtSignal(str)
    backend_failed = pyqtSignal(str)  # a backend asked for by name cannot run here (no model is loaded)
    playback_ended = pyqtSignal()  # the end of a file, not looping
    error = pyqtSignal(str)  # anything else that went wrong; the worker goes on
    evidence_ready = pyqtSignal(object)  # Evidence: the live check of a frame shown a moment ago

    def __init__(
        self,
        *,
        realtime: bool = True,
        loop: bool = True,
        preload: ModelLoad | None = None,
        parent: QObject | None = None,
    ) -> None:
        """`preload`: the model main started loading before the window (taken when it is the one asked for)."""
        super().__init__(parent)
        outlets = Outlets(
            result_ready=self.result_ready.emit,
            source_opened=self.source_opened.emit,
            source_changed=self.source_changed.emit,
            source_failed=self.source_failed.emit,
            source_lost=self.source_lost.emit,
            source_notice=self.source_notice.emit,
            model_loading=self.model_loading.emit,
            model_ready=self.model_ready.emit,
            model_failed=self.model_failed.emit,
            backend_failed=self.backend_failed.emit,
            playback_ended=self.playback_ended.emit,
            error=self.error.emit,
            evidence_ready=self.evidence_ready.emit,
        )
        self.scheduler = Scheduler(outlets, realtime=realtime, loop=loop, preload=preload)

    def run(self) -> None:
        self.scheduler.run()

    # -- requests from the GUI thread -----------------------------------------------------------------------------
    def open_source(self, spec: SourceSpec) -> None:
        self.scheduler.open_source(spec)

    def load_model(self, spec: ModelSpec) -> None:
        self.scheduler.load_model(spec)

    def set_params(self, params: ExplainParams) -> None:
        self.scheduler.set_params(params)

    def set_playing(self, playing: bool) -> None:
        self.scheduler.set_playing(playing)

    def seek(self, index: int) -> None:
        self.scheduler.seek(index)

    def set_view_size(self, size: tuple[int, int]) -> None:
        self.scheduler.set_view_size(size)

    def stop(self) -> None:
        self.scheduler.stop()

    def take_result(self) -> FrameResult | None:
        return self.scheduler.take_result()

    # -- plain attributes the GUI reads or sets ------------------------------------------------------------------
    @property
    def stats(self) -> WorkerStats:
        return self.scheduler.stats

    @property
    def loop(self) -> bool:
        return self.scheduler.loop

    @loop.setter
    def loop(self, loop: bool) -> None:
        self.scheduler.loop = loop

    def set_loop(self, loop: bool) -> None:
        self.scheduler.loop = loop

    @property
    def realtime(self) -> bool:
        return self.scheduler.realtime

    @realtime.setter
    def realtime(self, realtime: bool) -> None:
        self.scheduler.realtime = realtime
