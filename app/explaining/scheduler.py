"""Scheduler: what the pipeline's thread does, as plain Python (no Qt), so that it is tested headless.

It owns the frame source and the engine's Explainer. Each round (`step`) it takes the requests posted since the
last one (collapsed: only the newest of each kind, see app/explaining/mailbox.py) or, while playing, the next frame due
on the file's clock; it explains the frame and hands the result over through a one-slot box. It reports through
`Outlets` (the Qt worker passes its signals; tests record). Every error becomes a message for the user; the
scheduler goes on until a stop request.

The order of a round: settings, then a new source (its first picture is there while a model loads), then the model,
then play / pause, then one frame: a seek, or the next frame of the playback, or (when a setting or the model
changed) the frame on screen again. A round that opened a source ends on the source's first frame.

A model is built in a thread of its own (app/explaining/loading.py) while this thread goes on: a file waits on the
frame on screen until the model is ready (then plays explained from there, its clock restarted: nothing is passed
over for the time the load took), a camera goes on showing live frames, seeks and pauses are answered. A model that
fails to load and is followed by another (the controller's fallbacks: a backend asked for by name gives way to `auto`,
a remembered model to the bundled one) keeps the file waiting for that one. A file's background work (its frame
index, the seeker's table and kept frames) starts only once no model is loading: on two busy cores it held the
first explained frame back.

The live pipeline, staged so that two CPU cores do two things at once (issue 13):
- a video file is read through ReadAhead: the next frame is decoded and prepared for the model and the view (resized
  to the size the views are shown at, `set_view_size`) in a thread of its own while this frame is explained;
- a live source (a camera, a stream) is read through LiveAhead: its newest picture is prepared in a thread of its
  own while the one before is explained; when it has nothing new (a stream lost and being tried again) the picture
  on screen stays, and its notes (lost, back, another size) go out as `source_notice`;
- `_show` makes the mask and the views at that size and hands them over at once;
- the evidence check (two more black-box passes) runs in the EvidenceStream's thread on the newest explained frame,
  about ten times a second, and reports separately (`evidence_ready`): it never holds a mask back.

Steady over time: app/explaining/live_steadiness.py (the class "auto" holds, the mask averaged over playback frames).
Offline work (the app's export, `engine render`) still computes everything for every frame at full size.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, cast

import numpy as np

from app.explaining.live_steadiness import LiveSteadiness, steadiness_changed
from app.explaining.loading import Build, ModelLoad, build_explainer
from app.explaining.mailbox import (
    CameraOrDemo,
    Clock,
    ExplainParams,
    ModelSpec,
    MonotonicClock,
    RequestBox,
    Requests,
    Slot,
    SourceSpec,
)
from app.explaining.results import FrameResult, ModelInfo, Outlets, Played, SourceInfo, WorkerStats
from app.explaining.stats import RateMeter
from app.playback.live_ahead import LiveAhead
from app.playback.pacing import Drops, PlaybackClock
from app.playback.read_ahead import ReadAhead
from app.playback.sources import Frame, FrameSource, ImageSource, VideoFileSource, open_source
from app.playback.v4l2 import camera_not_listed
from app.source_specs import reopening_text
from engine.contract import AUTO, Explanation
from engine.errors import BackendUnavailableError, SaliencyError, UnknownClassError, VideoError
from engine.paths import DEMO_CLIP

# the readers that prepare frames for the model in a thread of their own (set_prepare, prepare_generation, close)
AHEAD_READERS = (ReadAhead, LiveAhead)

if TYPE_CHECKING:
    from engine.api import EvidenceStream, Explainer, PreparedFrame

log = logging.getLogger(__name__)

AUTO_SOURCE = "auto"  # the first webcam that opens, else the bundled demo clip


class Scheduler:
    def __init__(
        self,
        outlets: Outlets,
        *,
        realtime: bool = True,
        loop: bool = True,
        clock: Clock | None = None,
        load_explainer: Build = build_explainer,
        load_in_thread: bool = True,
        preload: ModelLoad | None = None,
    ) -> None:
        """`load_in_thread`: False builds models at once in `step` (tests that step the scheduler); `preload`: a
        load started before the scheduler (by main), taken when the first model asked for is the same."""
        self.out = outlets
        self.realtime = realtime  # files play at their own frame rate (passing over frames when behind)
        self.loop = loop  # read at the end of a file; set from the GUI thread (a plain attribute is enough)
        self.clock = clock or MonotonicClock()
        self._load_explainer = load_explainer
        self._load_in_thread = load_in_thread
        self._preload = preload
        self._load: ModelLoad | None = None  # the model being built (a file waits on its frame meanwhile)
        self._awaiting_model = False  # the last load failed and the controller follows it with another
        self._box = RequestBox(self.clock)
        self._results: Slot[FrameResult] = Slot()
        # owned by the pipeline's thread
        self.source: FrameSource | None = None
        # what frames are read through: a ReadAhead for files, a LiveAhead for cameras and streams
        self.reader: FrameSource | ReadAhead | LiveAhead | None = None
        self.generation = 0
        self.explainer: Explainer | None = None
        self.evidence_stream: EvidenceStream | None = None
        self.view_size: tuple[int, int] | None = None  # None: views at the frame's own size
        self.params = ExplainParams()
        self.playing = False
        self._current: Frame | None = None  # the last frame read (explained again when a setting changes)
        self._steady = LiveSteadiness(self.params)  # "auto"'s class and the mask over playback frames
        self._pacing = PlaybackClock()
        self._last_error = ""
        self.drops = Drops()
        self._explained = RateMeter()
        self.explained_count = 0  # frames explained since the start (read by the benchmark)
        self.stats = WorkerStats()

    # -- requests, from any thread --------------------------------------------------------------------------------
    def open_source(self, spec: SourceSpec) -> None:
        """A camera index, a file, a stream URL, AUTO_SOURCE, or a FrameSource already open (then owned here)."""
        self._box.post(source=spec, seek=None, playing=None)

    def load_model(self, spec: ModelSpec) -> None:
        self._box.post(model=spec)

    def set_params(self, params: ExplainParams) -> None:
        self._box.post(params=params)

    def set_playing(self, playing: bool) -> None:
        self._box.post(playing=playing)

    def seek(self, index: int) -> None:
        self._box.post(seek=index)

    def set_view_size(self, size: tuple[int, int]) -> None:
        """The views are shown at most (width, height) pixels large: they are made at that size."""
        self._box.post(view_size=(max(int(size[0]), 1), max(int(size[1]), 1)))

    def stop(self) -> None:
        self._box.post(stop=True)

    def take_result(self) -> FrameResult | None:
        return self._results.take()

    @property
    def loading(self) -> ModelLoad | None:
        """The model being built (None: none); a file waits on its frame meanwhile."""
        return self._load

    # -- the pipeline's thread ------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while self.step():
                pass
        finally:
            self.close()

    def step(self) -> bool:
        """One round: wait for requests or for the playback's next frame, then serve. False after a stop request."""
        requests = self._box.take(busy=lambda: self.playing and self.source is not None and not self._held())
        if requests.stop:
            return False
        try:
            self._serve(requests)
        except SaliencyError as error:  # it would come back on every frame: pause and say it
            self.playing = False
            self._report(str(error))
        except Exception as error:  # a bug must not kill the pipeline either
            log.error("pipeline error\n%s", traceback.format_exc())
            self.playing = False
            self._report(f"Unexpected error: {type(error).__name__}: {error}")
        return True

    def close(self) -> None:
        self._close_source()
        self._abandon_loads(wait=True)
        self._close_explainer()

    def _serve(self, requests: Requests) -> None:
        redo = False
        if requests.params is not None:
            redo = requests.params != self.params
            framing_changed = _framing(requests.params) != _framing(self.params)
            if steadiness_changed(self.params, requests.params) or framing_changed:
                self._steady.configure(requests.params)  # (another region or aspect: another picture to follow)
            self.params = requests.params
            if framing_changed:
                self._prepare_ahead()  # frames read ahead were cut and padded for the old region
        if requests.source is not None:
            self._open(requests.source)
        if requests.model is not None:
            self._start_load(requests.model)
        model_taken = self._load is not None and self._load.done and self._finish_load()
        if requests.view_size is not None and requests.view_size != self.view_size:
            self.view_size = requests.view_size
            self._prepare_ahead()
            redo = True
        if requests.playing is not None:
            self._set_playing(requests.playing)
        source, reader = self.source, self.reader
        if requests.seek is not None and source is not None and reader is not None and source.seekable:
            self._check_source()
            index = self._clamp(requests.seek)
            # a step to the next frame goes on as playback would; any other jump starts afresh
            current = self._current.index if self._current is not None else None
            steps_on = current is not None and index == current + 1
            if not steps_on:
                self._steady.reset()  # the frame no longer follows the last one
            self._show(reader.seek(index), follows=steps_on)
            self._pacing.restart()
        elif model_taken and self._current is not None:
            self._show(self._current)  # the frame on screen, explained at once (playback goes on from it next round)
        elif self.playing and reader is not None and requests.source is None and not self._held():
            self._play_one(reader)  # (a round that opened a source ends on its first frame: the GUI gets to see it)
        elif redo and self._current is not None:
            self._show(self._current)
        self._start_background()

    def _set_playing(self, playing: bool) -> None:
        source, reader = self.source, self.reader
        self.playing = playing and source is not None and source.kind != "image"
        self._pacing.restart()
        if self.playing and isinstance(reader, LiveAhead):
            reader.drop_ready()  # a live picture made ready before the pause is as old as the pause
        if self.playing and source is not None and reader is not None and source.frame_count:
            if (reader.position or 0) >= source.frame_count:
                self._steady.reset()
                self._show(reader.seek(0))  # play after the end (not looping): from the start

    # -- sources --------------------------------------------------------------------------------------------------
    def _open(self, spec: SourceSpec) -> None:
        note, chosen = "", True
        try:
            if isinstance(spec, FrameSource):
                source = spec
            elif spec == AUTO_SOURCE or isinstance(spec, CameraOrDemo):
                source, note = _first_camera_or_demo(spec.camera if isinstance(spec, CameraOrDemo) else "camera:0")
                chosen = False
            else:
                source = open_source(spec, background=False)
        except SaliencyError as error:  # keep showing what was open before
            self.out.source_failed(str(error))
            return
        self._close_source()
        self._current = None
        self._steady.reset()
        self.source = source
        self.reader = _reader_of(source)
        self._prepare_ahead()
        self.generation += 1
        self.playing = source.kind != "image"
        self._pacing.restart()
        if self.evidence_stream is not None:
            self.evidence_stream.clear()
        info = self._info(note or getattr(source, "mode_note", ""))
        if not info.spec and not info.path and isinstance(spec, (str, int)) and chosen:  # a source without its own
            info = replace(info, spec=reopening_text(spec))
        self.out.source_opened(replace(info, chosen=chosen))
        first = self.reader.read()
        if first is not None:
            self._show(first)

    def _info(self, note: str = "") -> SourceInfo:
        source = self.source
        assert source is not None
        path = str(source.path.resolve()) if isinstance(source, (VideoFileSource, ImageSource)) else ""
        spec = "" if path else getattr(source, "spec", "")
        info = SourceInfo(
            self.generation, source.kind, source.label, source.frame_count, source.fps, note, path, source.live_clock
        )
        return replace(info, spec=spec)

    def _close_source(self) -> None:
        if isinstance(self.reader, AHEAD_READERS):
            self.reader.close()
        self.reader = None
        if self.source is not None:
            self.source.close()
            self.drops.closed += self.source.dropped
            self.source = None

    def _clamp(self, index: int) -> int:
        count = self.source.frame_count if self.source is not None else None
        return min(max(index, 0), count - 1) if count else max(index, 0)

    def _check_source(self) -> None:
        """Headers only estimate the frame count: once the source has counted, the GUI hears the exact one, and
        once that a file ends well before its header's count."""
        source = self.source
        if source is not None and source.live:  # a live source's notes: lost, back, another picture size
            while (notice := source.take_notice()) is not None:
                self.out.source_notice(notice)
            return
        if not isinstance(source, VideoFileSource):
            return
        if source.refresh_count():
            self.out.source_changed(self._info())
        notice = source.take_notice()
        if notice is not None:
            self.out.source_notice(notice)

    def _play_one(self, source: FrameSource | ReadAhead | LiveAhead) -> None:
        """Read (or wait for) the next frame of the playback and show it."""
        self._check_source()
        video = self.source is not None and self.source.kind == "video"
        if self.realtime and video and not self._keep_time(source):
            return  # a request came in while waiting for the frame's time: serve it first
        try:
            frame = source.read()
        except VideoError as error:  # e.g. a camera unplugged mid-stream: close it, the app goes on
            self._close_source()
            self.playing = False
            self.out.source_lost(str(error))
            return
        if frame is None and self.source is not None and self.source.live:
            self._check_source()  # no new picture (a slow or lost stream, being tried again): the last one stays
            return
        if frame is None:  # the end of the file
            self._check_source()
            single = self.source is not None and self.source.frame_count == 1
            if self.loop and self.source is not None and self.source.seekable and not single:
                frame = source.seek(0)
                self._pacing.restart()
                self._steady.reset()
            else:  # (a clip of one frame stays on it, as a still image does: looping it would explain it flat out)
                self.playing = False
                self.out.playback_ended()
                return
        self._show(frame, follows=True)

    def _keep_time(self, reader: FrameSource | ReadAhead | LiveAhead) -> bool:
        """Real-time playback: pass over the frames we are late for, wait for the ones that are early. False when
        a request interrupted the wait."""
        source = self.source
        assert source is not None
        pace = self._pacing.pace(self.clock.now(), reader.position or 0, source.fps, source.frame_count)
        if pace.behind:
            reader.skip(pace.skip)
            self.drops.late += pace.skip
            return True
        return not self._box.wait_for_request(pace.wait)

    # -- the model ------------------------------------------------------------------------------------------------
    def _held(self) -> bool:
        """A file waits on the frame on screen while its model is being built (or a failed one's fallback comes)."""
        waiting = self._load is not None or self._awaiting_model
        return waiting and self.source is not None and self.source.kind == "video"

    def _start_load(self, spec: ModelSpec) -> None:
        """Build the model of `spec` (in a thread), or take the load main started for it; the model before goes."""
        self._close_explainer()
        if self._load is not None:
            self._load.abandon()
        self._awaiting_model = False
        self.out.model_loading(f"Loading {spec.path or 'the bundled default model'} (backend {spec.backend})...")
        preload, self._preload = self._preload, None
        if preload is not None and preload.spec == spec:
            load = preload
        else:
            if preload is not None:
                preload.abandon()
            load = ModelLoad(spec, self.params, self._load_explainer, threaded=self._load_in_thread)
        self._load = load
        load.on_done(lambda: self._box.post(model_built=True))  # wakes this thread

    def _abandon_loads(self, wait: bool = False) -> None:
        for load in (self._load, self._preload):
            if load is not None:
                load.abandon(wait)
        self._load = self._preload = None

    def _finish_load(self) -> bool:
        """Take the model built (True: the frame on screen is to be explained with it), or say why it failed."""
        load, self._load = self._load, None
        assert load is not None
        spec = load.spec
        self._pacing.restart()  # the file plays on from the frame on screen, whatever the load took
        try:
            explainer = load.take()
        except ImportError as error:
            self._model_failed(spec, f"The engine cannot be loaded: {error}")
            return False
        except BackendUnavailableError as error:
            if spec.backend == "auto":
                self._model_failed(spec, str(error))
            else:
                self._awaiting_model = True  # the controller switches to `auto` and loads again
                self.out.backend_failed(str(error))
            return False
        except SaliencyError as error:
            self._model_failed(spec, str(error))
            return False
        except Exception as error:  # e.g. a runtime's own error while building an engine
            log.error("model loading failed\n%s", "".join(traceback.format_exception(error)))
            self._model_failed(spec, f"The model could not be loaded: {type(error).__name__}: {error}")
            return False
        self.explainer = explainer
        from engine.api import EvidenceStream  # (engine.api imports no torch: the explainer is loaded already)

        self.evidence_stream = EvidenceStream(
            explainer.evidence, on_ready=self.out.evidence_ready, on_error=lambda error: self._report(str(error))
        )
        self._prepare_ahead()
        self._steady.reset()
        self.out.model_ready(
            ModelInfo(
                explainer.model_description, explainer.backend_name, explainer.backend_reason, tuple(explainer.classes)
            )
        )
        return True

    def _model_failed(self, spec: ModelSpec, text: str) -> None:
        self._awaiting_model = spec.fallback  # the controller loads the bundled model instead: wait for it
        self.out.model_failed(text)

    def _start_background(self) -> None:
        """The open file's background work (frame index, seeker), once no model is being built (at the end of each
        round: the round that opens a file and asks for a model starts the load first)."""
        if isinstance(self.source, VideoFileSource) and self._load is None:
            self.source.start_background()

    def _close_explainer(self) -> None:
        if self.evidence_stream is not None:
            self.evidence_stream.close()
            self.evidence_stream = None
        if isinstance(self.reader, AHEAD_READERS):
            self.reader.set_prepare(None)  # the read-ahead thread must not prepare for a closed model
        if self.explainer is not None:
            self.explainer.close()
            self.explainer = None

    # -- one frame ------------------------------------------------------------------------------------------------
    def _prepare_ahead(self) -> None:
        """Tell the read-ahead thread how to prepare frames: for the model loaded and the views' size."""
        if not isinstance(self.reader, AHEAD_READERS):
            return
        explainer = self.explainer
        self.reader.set_prepare(None if explainer is None else partial(self._prepare_now, explainer))

    def _prepared(self, frame: Frame, explainer: Explainer) -> PreparedFrame:
        """The frame's preparation made ahead when it fits the model and the views' size, else made now."""
        reader = self.reader
        if isinstance(reader, AHEAD_READERS) and frame.prepared is not None:
            if frame.prepared_with == reader.prepare_generation:
                return cast("PreparedFrame", frame.prepared)
        return self._prepare_now(explainer, frame.image)

    def _prepare_now(self, explainer: Explainer, image: np.ndarray) -> PreparedFrame:
        """The frame (its region, when one is chosen) made ready for the model and for the views' size."""
        params = self.params
        return explainer.prepare(image, self.view_size, region=params.region, aspect=params.aspect, fill=params.fill)

    def _show(self, frame: Frame, follows: bool = False) -> None:
        """Explain `frame` (when a model is loaded): the mask and the views now, handed to the GUI at once; the
        evidence check offered to its stream, which does it when it is free. `follows`: the frame comes right
        after the last one shown (playback), so the class held and the mask average go on from it."""
        self._current = frame
        explanation = played = None
        explainer = self.explainer
        if explainer is not None:
            params = self.params
            try:
                explanation, played = self._explain(explainer, frame, follows)
            except UnknownClassError as error:  # e.g. a class index the newly loaded model does not have
                self.params = replace(params, target=AUTO)
                self._steady.configure(self.params)
                self._report(f"{error}; explaining the top prediction instead")
                return
            if params.evidence and self.evidence_stream is not None:
                self.evidence_stream.offer(
                    explanation, frame_index=frame.index, frame_time=frame.captured_at, tag=self.generation
                )
            self._explained.tick()
            self.explained_count += 1
            self.stats.explained_fps = self._explained.rate()
            self.stats.timings_ms = dict(explanation.timings_ms)
            self.stats.model_ms = explanation.timings_ms.get("total", 0.0)
        result = FrameResult(
            self.generation,
            frame.index,
            frame.image,
            explanation,
            frame.captured_at,
            self.clock.now(),
            played,
            live_at=frame.live_at,
        )
        if self._results.put(result):
            self.drops.unshown += 1  # the GUI had not taken the previous result yet
        else:
            self.out.result_ready()
        self._last_error = ""
        self.stats.dropped = self.drops.total(self.source.dropped if self.source is not None else 0)

    def _explain(self, explainer: Explainer, frame: Frame, follows: bool) -> tuple[Explanation, Played]:
        """The frame explained for the class "auto" holds (or the one chosen), its mask through the average, and how
        its run went (app/explaining/live_steadiness.py)."""
        return self._steady.explain(explainer, self._prepared(frame, explainer), self.params, follows, frame.index)

    def _report(self, message: str) -> None:
        """Errors repeat frame after frame: the user hears each one once."""
        if message != self._last_error:
            self._last_error = message
            self.out.error(message)


def _framing(params: ExplainParams) -> tuple[object, ...]:
    """What `prepare` does with a frame depends on (frames prepared ahead with other values are prepared again)."""
    return params.region, params.aspect, params.fill if params.aspect == "pad" else None


def _reader_of(source: FrameSource) -> FrameSource | ReadAhead | LiveAhead:
    """Frames of a file are decoded and prepared ahead; a live source's newest picture is prepared beside the
    model; a still image is read as it is."""
    if source.kind == "video" and source.seekable:
        return ReadAhead(source)
    if source.live:
        return LiveAhead(source)
    return source


def _first_camera_or_demo(camera: str) -> tuple[FrameSource, str]:
    try:
        unlisted = camera_not_listed(camera)
        if unlisted:  # asking OpenCV for a camera that is not there takes seconds on some systems
            raise VideoError(unlisted)
        source = open_source(camera)
        return source, getattr(source, "mode_note", "") or f"Showing {source.label}."
    except SaliencyError as camera_error:
        if not DEMO_CLIP.exists():
            raise SaliencyError(f"{camera_error}; and the demo clip {DEMO_CLIP} is missing. Open a file.") from None
        return open_source(DEMO_CLIP), f"No webcam ({camera_error}); playing the demo clip {DEMO_CLIP.name}."
