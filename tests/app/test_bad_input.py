"""Bad input in the first seconds and the long run: a clip shorter than the model's load, a clip of one frame, and a
loop of a clip whose last frame does not decode. Real files (and the untrained model where one explains)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.playback.sources import VideoFileSource
from app.timeline.whole_file_pass import ModelChoice, PassJob, TimelinePass
from tests.app.conftest import write_video
from tests.app.test_scheduler import (
    FakeClock,
    FakeSource,
    GatedBuild,
    Recorder,
    Scheduler,
    explained_frame,
    finish_loading,
    loading_scheduler,
)

WAIT_S = 60.0


def last_frame_damaged(path: Path, frames: int) -> Path:
    """An MJPG AVI of `frames` frames whose last picture's data is zeroed (its container intact): the decoders fail
    on it (OpenCV reads one frame fewer, PyAV raises), as on a file cut or damaged at the end."""
    whole = write_video(path.with_name("whole.avi"), frames, fourcc="MJPG")
    data = bytearray(whole.read_bytes())
    index = data.find(b"idx1")
    last = data.rfind(b"00dc", 0, index)  # the last frame's chunk (before the index, which names it too)
    size = int.from_bytes(data[last + 4 : last + 8], "little")
    data[last + 8 + 2 : last + 8 + size] = bytes(size - 2)  # its JPEG start marker stays, its data goes
    path.write_bytes(bytes(data))
    return path


def test_a_clip_shorter_than_the_models_load_waits_then_plays_all_of_it_explained(untrained_model_file: Path):
    build = GatedBuild(untrained_model_file)
    scheduler, _, clock = loading_scheduler(FakeSource(count=5, fps=20.0), build)
    assert explained_frame(scheduler) == (0, False)
    clock.advance(9.0)  # the load takes 9 s: the whole clip 36 times over
    finish_loading(scheduler, build)
    shown = [explained_frame(scheduler)]
    for _ in range(6):
        scheduler.step()
        shown.append(explained_frame(scheduler))
    assert shown == [(index, True) for index in (0, 1, 2, 3, 4, 0, 1)]  # every frame, then round again
    assert scheduler.drops.late == 0
    scheduler.close()


def test_a_clip_of_one_frame_is_shown_once_not_played_flat_out(tmp_path: Path):
    one = write_video(tmp_path / "one.mp4", 1)
    recorder, clock = Recorder(), FakeClock()
    scheduler = Scheduler(recorder.outlets(), clock=clock, load_in_thread=False)
    scheduler.open_source(str(one))
    scheduler.step()
    assert scheduler.take_result().frame_index == 0  # type: ignore[union-attr]
    scheduler.step()  # the end at once: it stays on its frame
    assert recorder.said("playback_ended") == [None] and not scheduler.playing
    assert scheduler.take_result() is None
    scheduler.close()


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    return last_frame_damaged(tmp_path / "damaged.avi", 12)


def test_a_loop_of_a_clip_whose_last_frame_does_not_decode_goes_round_without_an_error(damaged: Path):
    recorder, clock = Recorder(), FakeClock()
    scheduler = Scheduler(recorder.outlets(), realtime=False, clock=clock, load_in_thread=False)
    scheduler.open_source(str(damaged))
    scheduler.step()
    source = scheduler.source
    assert isinstance(source, VideoFileSource)
    source.start_background()
    assert source._index is not None and source._index.wait(WAIT_S)
    shown = [scheduler.take_result().frame_index]  # type: ignore[union-attr]
    for _ in range(3 * 11):
        scheduler.step()
        result = scheduler.take_result()
        shown.append(None if result is None else result.frame_index)
    assert shown == [*range(11)] * 3 + [0]  # frames 0..10, round three times; frame 11 never
    assert recorder.said("error") == [] and recorder.said("source_lost") == []
    # one frame short of its header's 12 is within what headers get wrong: the count is corrected, nothing said
    assert recorder.said("source_changed")[-1].frame_count == source.frame_count == 11  # type: ignore[attr-defined]
    scheduler.close()


def test_the_timeline_pass_over_a_clip_whose_last_frame_does_not_decode_ends_at_the_last_good_frame(
    damaged: Path, untrained_model_file: Path
):
    rows: list[int] = []
    done: list[int] = []
    errors: list[str] = []
    explainer_pass = TimelinePass(
        lambda key, record: rows.append(record.frame),
        lambda key, frames: done.append(frames),
        lambda key, text: errors.append(text),
    )
    try:
        model = ModelChoice(str(untrained_model_file), "torch-cpu")
        explainer_pass.start(PassJob("damaged", str(damaged), 1, "blur", 25.0, model))
        assert explainer_pass.idle(timeout=WAIT_S)
    finally:
        explainer_pass.close()
    assert rows == list(range(11)) and done == [11] and errors == []
