"""The renderer's video reader and writer: clear errors, truncated files, background decoding."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from engine.errors import VideoError
from engine.video import VideoReader, VideoWriter


def test_prefetched_frames_equal_inline_frames(data_root) -> None:
    clip = data_root / "videos" / "realshort.mp4"
    with VideoReader(clip) as reader:
        inline = list(reader)
    with VideoReader(clip) as reader:
        prefetched = list(reader.prefetched(depth=2))
    assert len(inline) == len(prefetched) == 36
    assert all(np.array_equal(a, b) for a, b in zip(inline, prefetched))
    assert inline[0].shape == (240, 320, 3) and inline[0].dtype == np.uint8


def test_stopping_early_ends_the_decoder_thread(data_root) -> None:
    before = threading.active_count()
    with VideoReader(data_root / "videos" / "box.mp4") as reader:
        frames = reader.prefetched(depth=2)
        assert len(list(itertools.islice(frames, 3))) == 3
        frames.close()
    assert threading.active_count() == before


def test_reader_errors(tmp_path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    for name, message in (("empty.mp4", "empty file"), ("text.mp4", "not a video"), ("none.mp4", "does not exist")):
        with pytest.raises(VideoError, match=message):
            VideoReader(tmp_path / name)
    with pytest.raises(VideoError, match="folder"):
        VideoReader(tmp_path)


def test_writer_round_trip_and_size_check(tmp_path) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 10.0, (64, 48)) as writer:
        for value in (0, 128, 255):
            writer.write(np.full((48, 64, 3), value, np.uint8))
        with pytest.raises(ValueError, match="64x48"):
            writer.write(np.zeros((10, 10, 3), np.uint8))
    with VideoReader(path) as reader:
        frames = list(reader)
    # mp4v through YUV 4:2:0 (limited range) and back: a flat 128 reads as 124.3 here (codec integer arithmetic, not
    # the CPU's float kernels); 6 levels leave 1.6x
    assert len(frames) == 3 and abs(int(frames[1].mean()) - 128) < 6
