"""PipelineWorker: the one QThread that owns the frame source and the engine's Explainer.

The GUI thread never decodes video or runs the model: it posts requests (open a source, load a model, play,
seek, new settings) and gets results back by signal. Requests collapse: only the newest of each kind is served,
so a fast scrub never queues up stale seeks. Results go through a one-slot mailbox: when the GUI is slower than
the pipeline, the older result is replaced (and counted as dropped) instead of piling up in the event queue.
Every error becomes a message for the user; the thread itself keeps running until `stop()`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from app.sources import FrameSource, ImageSource, VideoFileSource, open_source
from app.stats import RateMeter
from engine.errors import SaliencyError, UnknownClassError, VideoError
from engine.paths import DEMO_CLIP

log = logging.getLogger(__name__)

AUTO_SOURCE = "auto"  # the first webcam that opens, else the bundled demo clip


@dataclass(frozen=True)
class ExplainParams:
    target: int | str = "auto"
    fill: str = "blur"
    opacity: float = 0.5
    evidence: bool = True


@dataclass(frozen=True)
class ModelSpec:
    path: str | None = None  # None: the bundled default model
    backend: str = "auto"


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
    classes: tuple  # engine.classes.ClassInfo


@dataclass
class FrameResult:
    generation: int
    frame_index: int | None
    frame: np.ndarray  # (H, W, 3) uint8 RGB
    explanation: Any | None  # engine.api.Explanation; None while no model is loaded
    captured_at: float
    done_at: float


@dataclass
class _Requests:
    """What the GUI asked for since the worker last looked; each kind keeps only its newest value."""

    source: str | int | Path | FrameSource | None = None
    model: ModelSpec | None = None
    params: ExplainParams | None = None
    playing: bool | None = None
    seek: int | None = None
    stop: bool = False

    def any(self) -> bool:
        return self.stop or any(v is not None for v in (self.source, self.model, self.params, self.playing, self.seek))


@dataclass
class WorkerStats:
    explained_fps: float = 0.0
    model_ms: float = 0.0  # the engine's own per-frame time ("total" of Explanation.timings_ms)
    dropped: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class PipelineWorker(QThread):
    result_ready = pyqtSignal()  # take it with take_result()
    source_opened = pyqtSignal(object)  # SourceInfo
    source_changed = pyqtSignal(object)  # SourceInfo with a corrected frame count
    source_failed = pyqtSignal(str)  # a source did not open (the one playing before goes on)
    source_lost = pyqtSignal(str)  # the source broke mid-stream (a camera unplugged) and is closed
    model_loading = pyqtSignal(str)
    model_ready = pyqtSignal(object)  # ModelInfo
    model_failed = pyqtSignal(str)
    playback_ended = pyqtSignal()  # the end of a file, not looping
    error = pyqtSignal(str)  # anything else that went wrong; the worker goes on

    def __init__(self, *, realtime: bool = True, loop: bool = True, parent: Any = None) -> None:
        super().__init__(parent)
        self.realtime = realtime  # files play at their own frame rate (dropping frames when behind)
        self.loop = loop
        self._condition = threading.Condition()
        self._requests = _Requests()
        self._mailbox: FrameResult | None = None
        # owned by the worker thread
        self._source: FrameSource | None = None
        self._generation = 0
        self._explainer: Any = None
        self._params = ExplainParams()
        self._playing = False
        self._current = None  # the last frame read (re-explained when a setting changes)
        self._clock: tuple[float, int] | None = None  # (time, frame index) where real-time playback started
        self._last_error = ""
        # frames never shown: late in real-time playback, replaced before the GUI took them, or by the camera
        self._dropped_late = self._dropped_unshown = self._dropped_before = 0
        # read by the GUI's status timer (plain attributes: a torn read only shows a stale number)
        self._explained = RateMeter()
        self.stats = WorkerStats()

    # -- requests from the GUI thread ---------------------------------------------------------------------------
    def open_source(self, spec: str | int | Path | FrameSource) -> None:
        """A camera index, a file, a stream URL, AUTO_SOURCE, or a FrameSource already open (the worker owns it)."""
        self._post(source=spec, seek=None, playing=None)

    def load_model(self, spec: ModelSpec) -> None:
        self._post(model=spec)

    def set_params(self, params: ExplainParams) -> None:
        self._post(params=params)

    def set_playing(self, playing: bool) -> None:
        self._post(playing=playing)

    def seek(self, index: int) -> None:
        self._post(seek=index)

    def set_loop(self, loop: bool) -> None:
        self.loop = loop  # read by the worker at the end of a file; a plain attribute is enough

    def stop(self) -> None:
        self._post(stop=True)

    def take_result(self) -> FrameResult | None:
        with self._condition:
            result, self._mailbox = self._mailbox, None
            return result

    def _post(self, **changes: Any) -> None:
        with self._condition:
            self._requests = replace(self._requests, **changes)
            self._condition.notify_all()

    # -- the thread ---------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while True:
                requests = self._wait_for_work()
                if requests.stop:
                    return
                try:
                    self._serve(requests)
                except SaliencyError as error:  # it would come back on every frame: pause and say it
                    self._playing = False
                    self._report(str(error))
                except Exception as error:  # a bug must not kill the pipeline either
                    log.error("pipeline error\n%s", traceback.format_exc())
                    self._playing = False
                    self._report(f"Unexpected error: {type(error).__name__}: {error}")
        finally:
            self._close_source()
            self._close_explainer()

    def _wait_for_work(self) -> _Requests:
        with self._condition:
            self._condition.wait_for(lambda: self._requests.any() or (self._playing and self._source is not None))
            requests, self._requests = self._requests, _Requests()
            return requests

    def _serve(self, requests: _Requests) -> None:
        redo = False
        if requests.params is not None:
            redo = requests.params != self._params
            self._params = requests.params
        if requests.source is not None:
            self._open(requests.source)  # before the model: the picture is there while the model loads
        if requests.model is not None:
            self._build_explainer(requests.model)
            redo = True
        if requests.playing is not None:
            self._set_playing(requests.playing)
        if requests.seek is not None and self._source is not None and self._source.seekable:
            self._sync_frame_count()
            self._show(self._source.seek(self._clamp(requests.seek)))
            self._clock = None
        elif self._playing and self._source is not None:
            self._play_one()
        elif redo and self._current is not None:
            self._show(self._current)

    def _set_playing(self, playing: bool) -> None:
        source = self._source
        self._playing = playing and source is not None and source.kind != "image"
        self._clock = None
        if self._playing and source is not None and source.frame_count and (source.position or 0) >= source.frame_count:
            self._show(source.seek(0))  # play after the end (not looping): from the start

    # -- sources ------------------------------------------------------------------------------------------------
    def _open(self, spec: str | int | Path | FrameSource) -> None:
        note = ""
        try:
            if isinstance(spec, FrameSource):
                source = spec
            elif spec == AUTO_SOURCE:
                source, note = _first_camera_or_demo()
            else:
                source = open_source(spec)
        except SaliencyError as error:  # keep showing what was open before
            self.source_failed.emit(str(error))
            return
        self._close_source()
        self._current = None
        self._source = source
        self._generation += 1
        self._playing = source.kind != "image"
        self._clock = None
        self.source_opened.emit(self._info(note))
        first = source.read()
        if first is not None:
            self._show(first)

    def _info(self, note: str = "") -> SourceInfo:
        assert self._source is not None
        source = self._source
        path = str(source.path.resolve()) if isinstance(source, (VideoFileSource, ImageSource)) else ""
        return SourceInfo(self._generation, source.kind, source.label, source.frame_count, source.fps, note, path)

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._dropped_before += self._source.dropped
            self._source = None

    def _clamp(self, index: int) -> int:
        count = self._source.frame_count if self._source is not None else None
        return min(max(index, 0), count - 1) if count else max(index, 0)

    def _play_one(self) -> None:
        """Read (or wait for) the next frame of the playback and show it."""
        source = self._source
        assert source is not None
        self._sync_frame_count()
        if self.realtime and source.kind == "video" and not self._keep_time(source):
            return  # a request came in while waiting for the frame's time: serve it first
        try:
            frame = source.read()
        except VideoError as error:  # e.g. a camera unplugged mid-stream: close it, the app goes on
            self._close_source()
            self._playing = False
            self.source_lost.emit(str(error))
            return
        if frame is None:  # the end of the file
            if self.loop and source.seekable:
                frame = source.seek(0)
                self._clock = None
            else:
                self._playing = False
                self.playback_ended.emit()
                return
        self._show(frame)

    def _sync_frame_count(self) -> None:
        """Headers only estimate the frame count; once the source has counted, the GUI hears the exact one."""
        if isinstance(self._source, VideoFileSource) and self._source.refresh_count():
            self.source_changed.emit(self._info())

    def _keep_time(self, source: FrameSource) -> bool:
        """Real-time playback: skip the frames we are late for, wait for the ones that are early."""
        next_index = source.position or 0
        now = time.perf_counter()
        if self._clock is None:
            self._clock = (now, next_index)
        start_time, start_index = self._clock
        due = start_index + int((now - start_time) * source.fps)
        if due > next_index:
            late = due - next_index
            if source.frame_count is not None:
                late = min(late, max(source.frame_count - 1 - next_index, 0))
            source.skip(late)
            self._dropped_late += late
            return True
        wait = start_time + (next_index - start_index) / source.fps - now
        with self._condition:
            interrupted = self._condition.wait_for(self._requests.any, timeout=max(wait, 0.0))
        return not interrupted

    # -- the model ----------------------------------------------------------------------------------------------
    def _build_explainer(self, spec: ModelSpec) -> None:
        self._close_explainer()
        name = spec.path or "the bundled default model"
        self.model_loading.emit(f"Loading {name} (backend {spec.backend})...")
        try:
            from engine.api import Explainer  # torch loads here, in this thread, never in the GUI's imports
        except ImportError as error:
            self.model_failed.emit(f"The engine cannot be loaded: {error}")
            return
        params = self._params
        try:
            self._explainer = Explainer(
                spec.path, spec.backend, fill=params.fill, opacity=params.opacity, evidence=params.evidence
            )
        except SaliencyError as error:
            self.model_failed.emit(str(error))
            return
        except Exception as error:  # e.g. a runtime's own error while building an engine
            log.error("model loading failed\n%s", traceback.format_exc())
            self.model_failed.emit(f"The model could not be loaded: {type(error).__name__}: {error}")
            return
        explainer = self._explainer
        self.model_ready.emit(
            ModelInfo(
                explainer.model_description, explainer.backend_name, explainer.backend_reason, tuple(explainer.classes)
            )
        )

    def _close_explainer(self) -> None:
        if self._explainer is not None:
            self._explainer.close()
            self._explainer = None

    # -- one frame ----------------------------------------------------------------------------------------------
    def _show(self, frame: Any) -> None:
        self._current = frame
        explanation = None
        if self._explainer is not None:
            params = self._params
            try:
                explanation = self._explainer.explain(
                    frame.image, params.target, fill=params.fill, opacity=params.opacity, evidence=params.evidence
                )
            except UnknownClassError as error:  # e.g. a class index the newly loaded model does not have
                self._params = replace(params, target="auto")
                self._report(f"{error}; explaining the top prediction instead")
                return
            self._explained.tick()
            self.stats.explained_fps = self._explained.rate()
            self.stats.timings_ms = dict(explanation.timings_ms)
            self.stats.model_ms = explanation.timings_ms.get("total", 0.0)
        result = FrameResult(
            self._generation, frame.index, frame.image, explanation, frame.captured_at, time.perf_counter()
        )
        with self._condition:
            replaced = self._mailbox is not None
            self._mailbox = result
        if replaced:
            self._dropped_unshown += 1  # the GUI had not shown the previous result yet
        else:
            self.result_ready.emit()
        self._last_error = ""
        source_drops = self._source.dropped if self._source is not None else 0
        self.stats.dropped = self._dropped_late + self._dropped_unshown + self._dropped_before + source_drops

    def _report(self, message: str) -> None:
        """Errors repeat frame after frame: the user hears each one once."""
        if message != self._last_error:
            self._last_error = message
            self.error.emit(message)


def _first_camera_or_demo() -> tuple[FrameSource, str]:
    try:
        return open_source(0), "Showing camera 0."
    except SaliencyError as camera_error:
        if not DEMO_CLIP.exists():
            raise SaliencyError(f"{camera_error}; and the demo clip {DEMO_CLIP} is missing. Open a file.") from None
        return open_source(DEMO_CLIP), f"No webcam ({camera_error}); playing the demo clip {DEMO_CLIP.name}."
