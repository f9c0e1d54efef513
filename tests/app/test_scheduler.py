"""The pipeline's scheduling without Qt: requests that collapse, the real-time clock, drop accounting, errors.

A fake clock moves on by itself instead of sleeping (so nothing here is timed), and a fake frame source stands in
for the decoder where the source is not what is tested; a truncated file and a model are real.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from app.explaining.loading import ModelLoad, build_explainer
from app.explaining.mailbox import ExplainParams, ModelSpec, Requests
from app.explaining.results import FrameResult, Outlets
from app.explaining.scheduler import Scheduler
from app.playback.sources import Frame, FrameSource, VideoFileSource
from engine.contract import AUTO
from engine.errors import BackendUnavailableError, ModelFileError, SaliencyError, VideoError
from tests.app.conftest import write_video


class FakeClock:
    """Time that passes only when the scheduler waits (to the deadline, or to the next scheduled event)."""

    def __init__(self) -> None:
        self.time = 0.0
        self._events: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    def at(self, when: float, event: Callable[[], object]) -> None:
        heapq.heappush(self._events, (when, next(self._order), event))

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def wait(self, _condition: object, ready: Callable[[], bool], timeout: float | None) -> bool:
        deadline = float("inf") if timeout is None else self.time + timeout
        while not ready():
            if self._events and self._events[0][0] <= deadline:
                when, _, event = heapq.heappop(self._events)
                self.time = max(self.time, when)
                event()
                continue
            if timeout is None:
                raise AssertionError("the scheduler would wait forever (for a request)")
            self.time = deadline
            return ready()
        return True


class FakeSource(FrameSource):
    """`count` tiny frames, each filled with its own index (mod 256); records what was decoded."""

    kind = "video"
    seekable = True

    def __init__(self, count: int = 40, fps: float = 10.0, label: str = "fake") -> None:
        self.frame_count = count
        self.fps = fps
        self.label = label
        self.next = 0
        self.decoded: list[int] = []
        self.seeks: list[int] = []
        self.closed = False
        self.fail_at: int | None = None  # read() raises VideoError at this frame (a camera unplugged)

    @property
    def position(self) -> int | None:
        return self.next

    def read(self) -> Frame | None:
        if self.next == self.fail_at:
            raise VideoError(f"{self.label} stopped sending pictures")
        if self.next >= (self.frame_count or 0):
            return None
        self.decoded.append(self.next)
        frame = Frame(np.full((4, 4, 3), self.next % 256, np.uint8), self.next, 0.0)
        self.next += 1
        return frame

    def seek(self, index: int) -> Frame:
        self.seeks.append(index)
        self.next = index
        frame = self.read()
        assert frame is not None
        return frame

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def outlets(self) -> Outlets:
        return Outlets(**{f.name: partial(self._record, f.name) for f in fields(Outlets)})

    def _record(self, name: str, value: object = None) -> None:
        self.events.append((name, value))

    def said(self, name: str) -> list[object]:
        return [value for event, value in self.events if event == name]


def started(source: FrameSource, *, realtime: bool = True, loop: bool = True) -> tuple[Scheduler, Recorder, FakeClock]:
    """A scheduler with `source` open (its first frame taken): playing, as a video starts."""
    recorder, clock = Recorder(), FakeClock()
    scheduler = Scheduler(recorder.outlets(), realtime=realtime, loop=loop, clock=clock, load_in_thread=False)
    scheduler.open_source(source)
    assert scheduler.step()
    assert taken(scheduler) == 0
    return scheduler, recorder, clock


def taken(scheduler: Scheduler) -> int | None:
    """The frame index of the result waiting for the GUI (None: no result)."""
    result: FrameResult | None = scheduler.take_result()
    return None if result is None else result.frame_index


# -- requests collapse: the newest of each kind wins ------------------------------------------------------------------
def test_a_fast_scrub_is_served_as_its_newest_seek() -> None:
    source = FakeSource()
    scheduler, _, _ = started(source)
    scheduler.set_playing(False)
    for index in (5, 9, 14, 21, 27):
        scheduler.seek(index)
    assert scheduler.step()
    assert taken(scheduler) == 27 and source.seeks == [27]  # no stale seek was decoded
    assert not scheduler.playing


def test_requests_keep_only_their_newest_value() -> None:
    requests = Requests().merged(seek=3).merged(playing=True).merged(seek=8).merged(playing=False)
    assert (requests.seek, requests.playing) == (8, False)
    assert Requests(seek=0).any() and Requests(source=0).any() and Requests(playing=False).any()
    assert not Requests().any()


def test_changed_settings_explain_the_frame_on_screen_again_once() -> None:
    source = FakeSource()
    scheduler, _, _ = started(source)
    scheduler.seek(12)
    scheduler.set_playing(False)
    scheduler.step()
    assert taken(scheduler) == 12
    for fill in ("grey", "black", "grey"):
        scheduler.set_params(ExplainParams(fill=fill))
    scheduler.step()
    assert taken(scheduler) == 12 and source.decoded[-1] == 12  # the frame kept, not decoded again
    scheduler.set_params(ExplainParams(fill="grey"))  # the same settings again: nothing to redo
    scheduler.step()
    assert taken(scheduler) is None


def test_a_new_source_cancels_a_pending_seek_and_starts_at_its_first_frame() -> None:
    first, second = FakeSource(label="first"), FakeSource(label="second")
    scheduler, recorder, _ = started(first)
    scheduler.seek(10)
    scheduler.open_source(second)
    scheduler.step()
    assert taken(scheduler) == 0 and second.seeks == [] and first.seeks == []
    assert first.closed and scheduler.source is second
    assert [info.label for info in recorder.said("source_opened")] == ["first", "second"]  # type: ignore[attr-defined]
    assert [info.generation for info in recorder.said("source_opened")] == [1, 2]  # type: ignore[attr-defined]


def test_an_idle_scheduler_waits_for_a_request_and_stop_ends_it() -> None:
    source = FakeSource()
    scheduler, _, _ = started(source)
    scheduler.set_playing(False)
    scheduler.step()
    with pytest.raises(AssertionError, match="wait forever"):  # paused, nothing asked: it sleeps, never spins
        scheduler.step()
    scheduler.stop()
    scheduler.run()  # serves the stop at once, then closes what it owns
    assert source.closed and scheduler.source is None


# -- the real-time playback clock -----------------------------------------------------------------------------------
def test_playback_waits_for_each_frame_at_the_files_rate() -> None:
    scheduler, _, clock = started(FakeSource(fps=10.0))
    shown = []
    for _ in range(4):
        scheduler.step()
        shown.append((taken(scheduler), round(clock.time, 6)))
    # the clock starts with frame 1 (frame 0 came with the opening): then one frame every 0.1 s
    assert shown == [(1, 0.0), (2, 0.1), (3, 0.2), (4, 0.3)]
    assert scheduler.drops.late == 0


def test_frames_we_are_late_for_are_passed_over_and_counted() -> None:
    source = FakeSource(fps=10.0)
    scheduler, _, clock = started(source)
    scheduler.step()
    assert taken(scheduler) == 1
    scheduler.step()
    assert taken(scheduler) == 2 and clock.time == pytest.approx(0.1)
    clock.advance(0.35)  # a slow frame: now 0.45 s, frame 5 is due
    scheduler.step()
    assert taken(scheduler) == 5 and clock.time == pytest.approx(0.45)
    assert scheduler.drops.late == 2 and scheduler.stats.dropped == 2


def test_never_passes_over_the_last_frame() -> None:
    scheduler, _, clock = started(FakeSource(count=6, fps=10.0), loop=False)
    scheduler.step()
    clock.advance(10.0)
    scheduler.step()
    assert taken(scheduler) == 5 and scheduler.drops.late == 3


def test_a_request_interrupts_the_wait_for_the_next_frame() -> None:
    source = FakeSource(fps=2.0)
    scheduler, _, clock = started(source)
    scheduler.step()
    assert taken(scheduler) == 1
    clock.at(0.2, lambda: scheduler.seek(30))  # while it waits 0.5 s for frame 2
    scheduler.step()
    # (frame 2 may already be decoded: files are read a frame or two ahead; it is not shown)
    assert clock.time == pytest.approx(0.2) and taken(scheduler) is None
    scheduler.step()
    assert taken(scheduler) == 30 and clock.time == pytest.approx(0.2)
    scheduler.step()  # the clock restarts at the sought frame: the next one comes at once, then every 0.5 s
    scheduler.step()
    assert taken(scheduler) == 32 and clock.time == pytest.approx(0.7)


def test_without_realtime_frames_follow_each_other_at_once() -> None:
    scheduler, _, clock = started(FakeSource(fps=1.0), realtime=False)
    for index in (1, 2, 3):
        scheduler.step()
        assert taken(scheduler) == index
    assert clock.time == 0.0


# -- the end of a file ---------------------------------------------------------------------------------------------
def test_the_end_of_a_file_loops_back_to_the_start() -> None:
    source = FakeSource(count=3)
    scheduler, recorder, _ = started(source, realtime=False)
    assert [(scheduler.step(), taken(scheduler))[1] for _ in range(4)] == [1, 2, 0, 1]
    # back to the start: frame 0 was decoded lately, so it comes from memory and the file is moved on to frame 1
    assert source.seeks == [1] and recorder.said("playback_ended") == []


def test_without_loop_playback_ends_and_play_starts_again_from_the_start() -> None:
    source = FakeSource(count=3)
    scheduler, recorder, _ = started(source, realtime=False, loop=False)
    scheduler.step()
    scheduler.step()
    assert taken(scheduler) == 2
    scheduler.step()
    assert recorder.said("playback_ended") == [None] and not scheduler.playing and taken(scheduler) is None
    scheduler.set_playing(True)
    scheduler.step()
    # frame 0 on the way (replaced before the GUI took it), from memory; the file moved on to frame 1
    assert taken(scheduler) == 1 and source.seeks == [1]


# -- drops, errors ---------------------------------------------------------------------------------------------------
def test_results_the_gui_did_not_take_are_replaced_and_counted() -> None:
    scheduler, recorder, _ = started(FakeSource(), realtime=False)
    assert recorder.said("result_ready") == [None]
    for _ in range(3):
        scheduler.step()
    assert taken(scheduler) == 3  # the newest
    assert recorder.said("result_ready") == [None, None]  # one signal per result the GUI can take
    assert scheduler.drops.unshown == 2 and scheduler.stats.dropped == 2


def test_frames_a_source_threw_away_count_also_after_it_closed() -> None:
    camera = FakeSource(label="camera")
    camera.dropped = 4
    scheduler, _, _ = started(camera, realtime=False)
    scheduler.step()
    assert taken(scheduler) == 1 and scheduler.stats.dropped == 4
    scheduler.open_source(FakeSource())
    scheduler.step()
    assert scheduler.drops.closed == 4 and scheduler.stats.dropped == 4


def test_a_source_that_breaks_mid_stream_is_closed_and_said() -> None:
    source = FakeSource()
    source.fail_at = 2
    scheduler, recorder, _ = started(source, realtime=False)
    scheduler.step()
    scheduler.step()
    assert recorder.said("source_lost") == ["fake stopped sending pictures"]
    assert source.closed and scheduler.source is None and not scheduler.playing


def test_an_error_pauses_and_is_said_once() -> None:
    class BrokenSeeks(FakeSource):
        def seek(self, index: int) -> Frame:
            raise SaliencyError(f"frame {index} could not be decoded")

    scheduler, recorder, _ = started(BrokenSeeks())
    for _ in range(2):
        scheduler.seek(7)
        scheduler.step()
    assert recorder.said("error") == ["frame 7 could not be decoded"]  # repeated errors are told once
    assert not scheduler.playing
    scheduler.seek(8)
    scheduler.step()
    assert recorder.said("error")[-1] == "frame 8 could not be decoded"


# -- real files and a real model -----------------------------------------------------------------------------------
def test_a_truncated_file_plays_what_it_has_and_says_so_once(tmp_path) -> None:
    whole = write_video(tmp_path / "whole.avi", 40, fourcc="MJPG")
    truncated = tmp_path / "half.avi"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    source = VideoFileSource(truncated)
    assert source._index is not None and source._index.wait(30)
    scheduler, recorder, _ = started(source, realtime=False)
    readable = source._index.count
    for _ in range(2 * readable + 3):  # round the file twice
        scheduler.step()
    notices = recorder.said("source_notice")
    assert notices == [
        f"half.avi ends early: {readable} of the 40 frames its header announces can be read "
        "(a truncated or damaged file); the frames before the damage are used"
    ]
    assert recorder.said("source_changed")[-1].frame_count == readable  # type: ignore[attr-defined]
    scheduler.close()


def test_a_model_that_cannot_load_is_said_and_frames_flow_unexplained(tmp_path: Path) -> None:
    scheduler, recorder, _ = started(FakeSource(), realtime=False)
    scheduler.load_model(ModelSpec(str(tmp_path / "absent.safetensors"), "torch-cpu"))
    scheduler.step()
    assert "absent.safetensors" in str(recorder.said("model_failed"))
    result = scheduler.take_result()
    assert result is not None and result.explanation is None and scheduler.explainer is None


def test_a_class_the_model_does_not_have_falls_back_to_auto(untrained_model_file: Path) -> None:
    scheduler, recorder, _ = started(FakeSource(), realtime=False)
    scheduler.set_playing(False)
    scheduler.set_params(ExplainParams(target=5000, evidence=False))
    scheduler.load_model(ModelSpec(str(untrained_model_file), "torch-cpu"))
    scheduler.step()
    assert recorder.said("model_ready")[0].backend == "torch-cpu"  # type: ignore[attr-defined]
    assert "5000" in str(recorder.said("error")) and "top prediction instead" in str(recorder.said("error"))
    assert scheduler.params.target == AUTO
    scheduler.seek(3)
    scheduler.step()
    result = scheduler.take_result()
    assert result is not None and result.frame_index == 3 and result.explanation is not None
    assert result.explanation.target == result.explanation.top5[0][0]
    scheduler.close()


# -- while a model loads (in its own thread) ------------------------------------------------------------------------
class GatedBuild:
    """Builds the untrained test model once `release()` is called (a load that takes as long as the test wants);
    counts its builds and the Explainers closed."""

    def __init__(self, model: Path, fail: Exception | None = None) -> None:
        self.model = model
        self.fail = fail
        self.gate = threading.Event()
        self.builds: list[ModelSpec] = []
        self.closed = 0

    def release(self) -> None:
        self.gate.set()

    def __call__(self, spec: ModelSpec, params: ExplainParams):
        self.builds.append(spec)
        assert self.gate.wait(120), "the test never released the build"
        if self.fail is not None:
            raise self.fail
        explainer = build_explainer(ModelSpec(str(self.model), "torch-cpu"), params)
        close = explainer.close

        def counted_close() -> None:
            self.closed += 1
            close()

        explainer.close = counted_close  # type: ignore[method-assign]
        return explainer


def loading_scheduler(source: FrameSource, build: GatedBuild, spec: ModelSpec | None = None, **options):
    """A scheduler whose model loads in a thread (gated by `build`), `source` open on its first frame."""
    recorder, clock = Recorder(), FakeClock()
    scheduler = Scheduler(recorder.outlets(), clock=clock, load_explainer=build, **options)
    scheduler.open_source(source)
    scheduler.load_model(spec or ModelSpec(None, "auto"))
    assert scheduler.step()
    return scheduler, recorder, clock


def finish_loading(scheduler: Scheduler, build: GatedBuild) -> None:
    load = scheduler.loading
    assert load is not None
    build.release()
    assert load.wait(120)
    scheduler.step()  # takes the model


def explained_frame(scheduler: Scheduler) -> tuple[int | None, bool]:
    result = scheduler.take_result()
    assert result is not None
    return result.frame_index, result.explanation is not None


def test_a_file_waits_on_its_first_frame_while_the_model_loads_then_plays_explained_from_there(
    untrained_model_file: Path,
) -> None:
    build = GatedBuild(untrained_model_file)
    source = FakeSource(fps=20.0)
    scheduler, recorder, clock = loading_scheduler(source, build)
    assert explained_frame(scheduler) == (0, False)  # the first frame, shown while the model loads
    assert recorder.said("model_loading") and scheduler.loading is not None
    clock.advance(9.0)  # the load takes 9 s: 180 frames of the file's clock
    scheduler.set_playing(True)
    scheduler.step()
    assert scheduler.take_result() is None  # no frame played (a few are decoded ahead, not shown)
    finish_loading(scheduler, build)
    assert recorder.said("model_ready") and explained_frame(scheduler) == (0, True)
    for index in (1, 2, 3):  # the clock restarted at the frame on screen: nothing passed over
        scheduler.step()
        assert explained_frame(scheduler) == (index, True)
    assert scheduler.drops.late == 0
    scheduler.close()


def test_seeks_and_pauses_are_answered_while_the_model_loads(untrained_model_file: Path) -> None:
    build = GatedBuild(untrained_model_file)
    scheduler, _, _ = loading_scheduler(FakeSource(), build)
    scheduler.take_result()
    scheduler.set_playing(False)
    scheduler.seek(17)
    scheduler.step()
    assert explained_frame(scheduler) == (17, False) and not scheduler.playing
    finish_loading(scheduler, build)
    assert explained_frame(scheduler) == (17, True)  # the frame on screen, explained once the model is there
    scheduler.close()


def test_a_camera_shows_live_frames_while_the_model_loads(untrained_model_file: Path) -> None:
    class Camera(FakeSource):
        kind = "camera"
        seekable = False

    build = GatedBuild(untrained_model_file)
    scheduler, _, _ = loading_scheduler(Camera(count=1000), build)
    shown = [explained_frame(scheduler)]
    for _ in range(3):
        scheduler.step()
        shown.append(explained_frame(scheduler))
    assert shown == [(0, False), (1, False), (2, False), (3, False)]
    finish_loading(scheduler, build)
    scheduler.step()
    assert explained_frame(scheduler)[1]
    scheduler.close()


def test_a_backend_that_cannot_run_keeps_the_file_waiting_for_the_fallback(untrained_model_file: Path) -> None:
    failing = GatedBuild(untrained_model_file, fail=BackendUnavailableError("the tensorrt backend cannot run here"))
    scheduler, recorder, _ = loading_scheduler(FakeSource(), failing, ModelSpec(None, "tensorrt"))
    scheduler.take_result()
    finish_loading(scheduler, failing)
    assert recorder.said("backend_failed") == ["the tensorrt backend cannot run here"]
    scheduler.set_playing(True)
    scheduler.step()
    assert scheduler.take_result() is None  # still waiting: the controller asks for `auto` next
    scheduler._load_explainer = build = GatedBuild(untrained_model_file)
    scheduler.load_model(ModelSpec(None, "auto"))
    scheduler.step()
    finish_loading(scheduler, build)
    assert explained_frame(scheduler) == (0, True)
    scheduler.close()


def test_a_remembered_model_that_fails_keeps_the_file_waiting_and_another_plays_it_unexplained(
    untrained_model_file: Path,
) -> None:
    for remembered in (True, False):
        build = GatedBuild(untrained_model_file, fail=ModelFileError("not a model file"))
        asked = ModelSpec("old.safetensors", fallback=remembered)
        scheduler, recorder, _ = loading_scheduler(FakeSource(), build, asked)
        scheduler.take_result()
        finish_loading(scheduler, build)
        assert recorder.said("model_failed") == ["not a model file"]
        scheduler.set_playing(True)
        scheduler.step()
        if remembered:  # the controller loads the bundled model next: the file waits for it
            assert scheduler.take_result() is None
        else:  # no model comes: the file plays without explanations
            assert explained_frame(scheduler) == (2, False)
        scheduler.close()


def test_the_load_main_started_is_taken_when_the_same_model_is_asked_for(untrained_model_file: Path) -> None:
    build = GatedBuild(untrained_model_file)
    build.release()
    asked = ModelSpec(None, "auto")
    preload = ModelLoad(asked, ExplainParams(), build)
    scheduler, recorder, _ = loading_scheduler(FakeSource(), build, asked, preload=preload)
    finish_loading(scheduler, build)
    assert build.builds == [asked] and len(recorder.said("model_ready")) == 1  # built once
    scheduler.close()

    other = GatedBuild(untrained_model_file)
    other.release()
    preload = ModelLoad(ModelSpec("another.safetensors"), ExplainParams(), other)
    scheduler, _, _ = loading_scheduler(FakeSource(), other, asked, preload=preload)
    finish_loading(scheduler, other)
    assert preload.wait(120) and other.builds == [ModelSpec("another.safetensors"), asked]
    assert other.closed == 1  # the load nobody asked for was closed
    scheduler.close()


def test_a_files_background_work_waits_for_the_model(untrained_model_file: Path, video_file: Path) -> None:
    build = GatedBuild(untrained_model_file)
    scheduler, _, _ = loading_scheduler(video_file, build)  # type: ignore[arg-type]
    source = scheduler.source
    assert isinstance(source, VideoFileSource) and not source.background_started
    finish_loading(scheduler, build)
    assert source.background_started
    scheduler.close()


def test_an_abandoned_load_closes_its_model_and_a_failed_one_raises_where_taken(untrained_model_file: Path) -> None:
    build = GatedBuild(untrained_model_file)
    load = ModelLoad(ModelSpec(), ExplainParams(), build)
    load.abandon()
    build.release()
    assert load.wait(120) and build.closed == 1
    failing = GatedBuild(untrained_model_file, fail=ModelFileError("broken"))
    failing.release()
    load = ModelLoad(ModelSpec(), ExplainParams(), failing, threaded=False)
    with pytest.raises(ModelFileError, match="broken"):
        load.take()
