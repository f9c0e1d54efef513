"""ReadAhead on real video files: the frames a sequential decode gives, exact seeks, preparation made ahead."""

from __future__ import annotations

import numpy as np

from app.read_ahead import ReadAhead
from app.sources import VideoFileSource


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
