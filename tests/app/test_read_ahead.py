"""ReadAhead on real video files: the frames a sequential decode gives, exact seeks, preparation made ahead."""

from __future__ import annotations

import threading

import numpy as np

from app.playback.frame_memory import FrameMemory
from app.playback.read_ahead import RECENT_AT_LEAST, ReadAhead
from app.playback.sources import VideoFileSource
from tests.app.conftest import needs_pyav_as_opencv


def test_sequential_frames_are_the_files_own(video_file, video_frames) -> None:
    source = VideoFileSource(video_file)
    reader = ReadAhead(source, depth=2)
    try:
        frames = []
        while (frame := reader.read()) is not None:
            frames.append(frame)
        assert [frame.index for frame in frames] == list(range(len(video_frames)))
        assert all(np.array_equal(frame.image, expected) for frame, expected in zip(frames, video_frames))
        assert reader.read() is None and reader.read() is None  # the end stays the end
        assert reader.position == len(video_frames)
    finally:
        reader.close()
        source.close()


def test_seeks_are_exact_and_reading_goes_on_from_there(video_file, video_frames) -> None:
    source = VideoFileSource(video_file)
    reader = ReadAhead(source)
    try:
        assert reader.read().index == 0  # the decoder is a frame or two ahead by now
        for index in (30, 5, 39, 0, 17):
            frame = reader.seek(index)
            assert frame.index == index and np.array_equal(frame.image, video_frames[index])
            follower = reader.read()
            if index == len(video_frames) - 1:
                assert follower is None
            else:
                assert follower is not None and follower.index == index + 1
        reader.seek(39)
        assert reader.read() is None
        assert reader.seek(2).index == 2 and reader.read().index == 3  # back from the end
    finally:
        reader.close()
        source.close()


def test_frames_are_prepared_ahead_and_a_new_preparation_is_told_apart(video_file) -> None:
    source = VideoFileSource(video_file)
    reader = ReadAhead(source)
    try:
        reader.set_prepare(lambda image: ("small", image.shape))
        first_generation = reader.prepare_generation
        frame = reader.seek(10)  # after a seek, every frame is prepared the new way
        assert frame.prepared == ("small", frame.image.shape) and frame.prepared_with == first_generation
        assert reader.read().prepared_with == first_generation
        reader.set_prepare(lambda image: "large")
        assert reader.prepare_generation == first_generation + 1
        # frames already decoded keep their old preparation; the caller sees it by the generation
        later = [reader.read() for _ in range(4)]
        assert later[-1].prepared == "large" and later[-1].prepared_with == reader.prepare_generation
        assert all(f.prepared == "large" for f in later if f.prepared_with == reader.prepare_generation)
    finally:
        reader.close()
        source.close()


class CountingSource(VideoFileSource):
    """The file's own seeks, with the thread that made each (a drag answered from memory waits for none)."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.seeks: list[str] = []

    def seek(self, index: int):
        self.seeks.append(threading.current_thread().name)
        return super().seek(index)


def test_drag_steps_take_frames_decoded_already_and_reading_goes_on_in_order(video_file, video_frames) -> None:
    source = CountingSource(video_file)
    reader = ReadAhead(source)
    try:
        reader.set_prepare(lambda image: float(image.mean()))
        assert reader.seek(10).index == 10
        read = [reader.read() for _ in range(4)]  # 11..14 handed out; the decoder is ahead of them
        assert [frame.index for frame in read] == [11, 12, 13, 14]
        before = len(source.seeks)
        for index in (12, 11, 13, 14, 12):  # a drag back and forth over frames decoded already
            frame = reader.seek(index)
            assert frame.index == index and np.array_equal(frame.image, video_frames[index])
            assert frame.prepared == float(video_frames[index].mean())  # prepared already, and for this frame
        # every step came from memory: the caller's thread moved the file for none of them (the decoder did, after)
        assert threading.current_thread().name not in source.seeks[before:]
        # the picture came from memory; only the decoder moved the file (after the last step, in its own thread)
        follower = reader.read()
        assert follower is not None and follower.index == 13 and np.array_equal(follower.image, video_frames[13])
        assert [reader.read().index for _ in range(3)] == [14, 15, 16]
        reader.set_prepare(lambda image: "new")  # a frame remembered with an old preparation is prepared again
        assert reader.seek(15).prepared == "new"
        assert reader.seek(len(video_frames) - 1).index == len(video_frames) - 1
        assert reader.seek(len(video_frames) - 1).index == len(video_frames) - 1  # from memory, at the very end
        assert reader.read() is None
    finally:
        reader.close()
        source.close()


def test_a_frame_counts_as_captured_when_it_is_taken_not_when_it_was_decoded_ahead(video_file) -> None:
    import time

    source = VideoFileSource(video_file)
    reader = ReadAhead(source, depth=2)
    try:
        reader.read()
        time.sleep(0.3)  # the decoder fills its queue meanwhile
        before = time.perf_counter()
        frame = reader.read()
        assert frame is not None and frame.captured_at >= before
    finally:
        reader.close()
        source.close()


def test_a_paused_reader_decodes_the_frames_behind_the_one_sought_for_a_drag_back(video_file, video_frames) -> None:
    import time

    needs_pyav_as_opencv(video_file)  # the frames behind come from a second PyAV decoder
    source = CountingSource(video_file)
    reader = ReadAhead(source)
    try:
        assert source._seeker is not None and source._seeker.wait(10)  # (the frames behind need its table)
        reader.set_prepare(lambda image: float(image.mean()))
        assert reader.seek(30).index == 30  # and nothing read after it: the player is paused
        deadline = time.monotonic() + 10
        while reader._behind_filled != 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reader._behind_filled == 30
        before = len(source.seeks)
        for index in (29, 25, 22, 28):  # a drag back over the frames decoded behind
            frame = reader.seek(index)
            assert frame.index == index and np.array_equal(frame.image, video_frames[index])
            assert frame.prepared == float(video_frames[index].mean())
        assert threading.current_thread().name not in source.seeks[before:]  # all from memory
        played = [reader.read() for _ in range(4)]  # playing on from the last step
        assert [f.index for f in played] == [29, 30, 31, 32]
        assert all(np.array_equal(f.image, video_frames[f.index]) for f in played)
        assert all(np.array_equal(reader.seek(i).image, video_frames[i]) for i in (31, 3, 39))
    finally:
        reader.close()
        source.close()


def test_frames_kept_for_seeks_count_against_the_apps_budget(video_file, video_frames) -> None:
    """When the budget for frames kept is full (the seeker's decoded frames took it), the read-ahead lets its oldest
    frames go, keeps a few all the same, and gives everything back when it closes."""
    frame_bytes = video_frames[0].nbytes  # (nothing prepared: a frame is its picture)
    memory = FrameMemory(6 * frame_bytes)
    source = VideoFileSource(video_file)
    reader = ReadAhead(source, memory=memory)
    try:
        for _ in range(20):
            reader.read()
        assert memory.used == 6 * frame_bytes and len(reader._recent) == 6  # the newest six
        assert sorted(reader._recent)[-1] == 19
        assert memory.take(memory.limit - memory.used + 3 * frame_bytes, force=True)  # another user takes it all
        reader.read()
        assert len(reader._recent) == RECENT_AT_LEAST  # the fewest it keeps, beyond the budget
        assert reader.seek(18).index == 18  # (still in memory)
    finally:
        reader.close()
        source.close()
    assert memory.used == memory.limit + 3 * frame_bytes - 6 * frame_bytes  # its own bytes all given back
