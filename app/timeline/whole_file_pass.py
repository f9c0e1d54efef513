"""The timeline's background pass: every frame of a video explained for one class, in one thread of low priority
(plain Python threads, no Qt, tested headless).

It computes the rows that count (the live view explains the frames it shows, passing over some when late, and checks
the evidence of only about ten of them a second). Frames are read in order from the start with the engine's one
video reader and explained one at a time with engine.video.sequence as the app's export explains them (the same
steady run: class held in "auto", mask average; same rows, engine.video.frametable), on an Explainer of its own, so
that the live pipeline's model is never shared between threads:
- on a CPU runtime (ONNX Runtime, OpenVINO) the pass's model runs in one intra-op thread, this thread, at a nice
  value above the live pipeline's and the evidence stream's: when both want the CPU, the live view gets it;
- the pass can be paused (the keeper pauses it while the video is scrubbed) and waits between frames;
- it can be given an allowance (`allow`, `grant`): while the video plays, the keeper grants it one frame for every
  few the live view shows, so that it gets there without taking the live view's place; an allowance is counted in
  frames, so it holds on a slow machine as on a fast one;
- a new job (another class, fill, file or model) replaces the old one at the next frame; the same job again goes on
  where it is. Frames whose rows are there already are still explained (the average and the class held need every
  frame before the next), without the evidence check and without a row.

The Explainer is built in the pass's thread when a job runs, again when the job's model differs, and closed when no
job is left (a complete timeline: its memory goes back).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from engine.closing import Closing
from engine.errors import SaliencyError
from engine.runtime.live import lower_this_threads_priority
from engine.runtime.temporal import Steadiness
from engine.video.frametable import FrameRecord
from engine.video.reader import VideoReader

if TYPE_CHECKING:
    from engine.api import Explainer
    from engine.video.sequence import SequenceExplainer

# the evidence stream's: the live view first; its evidence and the timeline share what it leaves (the timeline's share
# while playing is set by its allowance; at 15 it was starved on two busy cores: measured in docs/ENGINE.md)
PASS_NICENESS = 0
CPU_RUNNERS = ("onnxruntime", "openvino")  # backends whose threads the Explainer takes as options


@dataclass(frozen=True)
class ModelChoice:
    """The model the live view runs: the pass builds the same (path None: the bundled default)."""

    path: str | None
    backend: str  # the backend the live view ended up on (not "auto": the pass takes the same one)


@dataclass(frozen=True)
class PassJob:
    key: object  # the caller's identification of the numbers (app.timeline.rows.TimelineKey), handed back with each row
    path: str  # the video file
    target: int  # a class index or AUTO
    fill: str
    fps: float  # the frame rate the rows' times are counted in
    model: ModelChoice
    skip: frozenset[int] = field(default_factory=frozenset)  # frames whose rows are there already
    steadiness: Steadiness = Steadiness()  # as the live view: the class held in "auto", the mask average
    aspect: str = "stretch"  # as the live view explains the whole frame (engine.runtime.framing)

    def same_work(self, other: PassJob | None) -> bool:
        """The same rows to compute (whatever is there already): no reason to start again."""
        return other is not None and replace(self, skip=frozenset()) == replace(other, skip=frozenset())


def build_pass_explainer(model: ModelChoice) -> Explainer:
    """The pass's own Explainer: the live view's model and backend; on a CPU runner, one thread per graph."""
    from engine.api import Explainer  # the engine loads here, in the pass's thread

    options = {"threads": 1, "evidence_threads": 1} if model.backend in CPU_RUNNERS else {}
    return Explainer(model.path, model.backend, evidence=True, backend_options=options)


class TimelinePass(Closing):
    """One thread that explains the frames of the current job, in order, when not paused.

        explainer_pass = TimelinePass(on_record=..., on_done=..., on_error=...)
        explainer_pass.start(job)          # replaces the job running (at the next frame)
        explainer_pass.set_paused(True)    # waits between frames until unpaused
        explainer_pass.close()

    `on_record(key, record)`, `on_done(key, frames)` and `on_error(key, text)` are called from the pass's thread.
    """

    def __init__(
        self,
        on_record: Callable[[object, FrameRecord], None],
        on_done: Callable[[object, int], None] = lambda key, frames: None,
        on_error: Callable[[object, str], None] = lambda key, text: None,
        *,
        load_explainer: Callable[[ModelChoice], Explainer] = build_pass_explainer,
        niceness: int = PASS_NICENESS,
    ) -> None:
        self.on_record = on_record
        self.on_done = on_done
        self.on_error = on_error
        self._load_explainer = load_explainer
        self._niceness = niceness
        self.explained = 0  # frames explained so far (all jobs)
        self._condition = threading.Condition()
        self._job: PassJob | None = None
        self._paused = False
        self._allowance: int | None = None  # frames it may still explain (None: no limit)
        self._closed = False
        self._busy = False  # a frame is being explained (or the model built)
        self._explainer: Explainer | None = None
        self._explainer_model: ModelChoice | None = None
        self._thread = threading.Thread(target=self._run, name="timeline-pass", daemon=True)
        self._thread.start()

    # -- from any thread ------------------------------------------------------------------------------------------
    def start(self, job: PassJob | None) -> None:
        """Work on `job` from now on (None: nothing); the same work as the job running goes on where it is."""
        with self._condition:
            if job is not None and job.same_work(self._job):
                return
            self._job = job
            self._condition.notify_all()

    def set_paused(self, paused: bool) -> None:
        with self._condition:
            self._paused = paused
            self._condition.notify_all()

    def allow(self, frames: int | None) -> None:
        """From now on, explain at most `frames` more frames until granted more (None: no limit)."""
        with self._condition:
            self._allowance = frames
            self._condition.notify_all()

    def grant(self, frames: int = 1, at_most: int = 2) -> None:
        """`frames` more frames allowed (no more than `at_most` saved up); nothing changes without a limit."""
        with self._condition:
            if self._allowance is not None:
                self._allowance = min(self._allowance + frames, at_most)
                self._condition.notify_all()

    @property
    def job(self) -> PassJob | None:
        with self._condition:
            return self._job

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is left (tests); True when idle."""
        with self._condition:
            return self._condition.wait_for(lambda: self._job is None and not self._busy, timeout)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._job = None
            self._condition.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)  # a model being built cannot be interrupted

    # -- the pass's thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        lower_this_threads_priority(self._niceness)
        try:
            while (job := self._next_job()) is not None:
                self._work_on(job)
                if self.job is None:  # nothing more to do: its model's memory back (~80 MB), built again when needed
                    self._close_explainer()
        finally:
            self._close_explainer()

    def _close_explainer(self) -> None:
        if self._explainer is not None:
            self._explainer.close()
            self._explainer = self._explainer_model = None

    def _next_job(self) -> PassJob | None:
        """The job to run once unpaused; None when closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._closed or (self._job is not None and not self._paused))
            if self._closed:
                return None
            self._busy = True
            return self._job

    def _current(self, job: PassJob) -> bool:
        """Wait while paused; True while `job` is still the one to do."""
        with self._condition:
            self._busy = False
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._closed or self._job is not job or not self._paused)
            if self._job is not job or self._closed:
                return False
            self._busy = True
            return True

    def _allowed(self, job: PassJob) -> bool:
        """Wait until a frame may be explained (an allowance, or none needed) and take it; False when `job` is not
        the one to do any more."""
        with self._condition:
            self._busy = False
            self._condition.notify_all()

            def ready() -> bool:
                allowed = self._allowance is None or self._allowance > 0
                return self._closed or self._job is not job or (allowed and not self._paused)

            self._condition.wait_for(ready)
            if self._job is not job or self._closed:
                return False
            if self._allowance is not None:
                self._allowance -= 1
            self._busy = True
            return True

    def _finish(self, job: PassJob) -> None:
        with self._condition:
            if self._job is job:
                self._job = None
            self._busy = False
            self._condition.notify_all()

    def _work_on(self, job: PassJob) -> None:
        try:
            frames = self._explain_all(job)
        except Exception as error:  # the user hears about it; the pass waits for the next job
            traceback.print_exc()
            self._finish(job)
            # the project's own errors say what happened and what to do: shown as they are
            self.on_error(
                job.key, str(error) if isinstance(error, SaliencyError) else f"{type(error).__name__}: {error}"
            )
            return
        self._finish(job)
        if frames is not None:
            self.on_done(job.key, frames)

    def _explain_all(self, job: PassJob) -> int | None:
        """Every frame of the job's video in order; the number of frames, or None when the job was replaced."""
        sequence = self._sequence(job)
        if sequence is None:
            return None
        with VideoReader(job.path) as reader:
            index = 0
            # each frame waits for an allowance when there is one (every frame counts, rows there already too: the
            # steady run needs each frame before the next)
            while self._allowed(job):
                frame = reader.read()
                if frame is None:
                    return index
                wanted = index not in job.skip
                sequence.evidence = wanted  # (a row there already: the frame is explained for the ones after it)
                explanation = sequence.explain([frame])[0]
                self.explained += 1
                if wanted and self._job is job:
                    self.on_record(job.key, FrameRecord.of(index, job.fps, explanation))
                index += 1
        return None

    def _sequence(self, job: PassJob) -> SequenceExplainer | None:
        """A SequenceExplainer for the job on the model it asks for (built now when it is another one)."""
        from engine.video.sequence import SequenceExplainer  # imports engine.api: cheap, no torch

        if self._explainer is None or self._explainer_model != job.model:
            self._close_explainer()
            self._explainer = self._load_explainer(job.model)
            self._explainer_model = job.model
        if not self._current(job):
            return None
        self._explainer.fill = job.fill  # the fill of the job's rows (the Explainer's setting for every call)
        return SequenceExplainer(self._explainer, job.target, job.steadiness, evidence=True, aspect=job.aspect)
