"""The pipeline's scheduling without Qt: requests that collapse, the real-time clock, drop accounting, errors.

A fake clock moves on by itself instead of sleeping (so nothing here is timed), and a fake frame source stands in
for the decoder where the source is not what is tested; a truncated file and a model are real.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from app.explaining.mailbox import ExplainParams, ModelSpec, Requests
from app.explaining.results import FrameResult, Outlets
from app.explaining.scheduler import Scheduler
from app.playback.sources import Frame, FrameSource, VideoFileSource
from engine.contract import AUTO
from engine.errors import SaliencyError, VideoError
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
    scheduler = Scheduler(recorder.outlets(), realtime=realtime, loop=loop, clock=clock)
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
