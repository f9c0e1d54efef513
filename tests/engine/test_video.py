"""The renderer's video reader and writer: clear errors, truncated files, background decoding."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from engine.errors import VideoError
from engine.video import VideoReader, VideoWriter, ends_early


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


def test_a_truncated_file_yields_its_frames_then_says_it_ends_early(data_root, tmp_path) -> None:
    source = data_root / "videos" / "box.mp4"
    truncated = tmp_path / "half.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])  # the first half of an mp4's bytes
    with VideoReader(truncated) as reader:
        assert reader.frame_count == 456 and reader.truncation is None  # the header does not know
        frames = list(reader)
        assert 0 < len(frames) < 455 and reader.frames_read == len(frames)
        assert reader.truncation == (
            f"half.mp4 ends early: {len(frames)} of the 456 frames its header announces can be read "
            "(a truncated or damaged file); the frames before the damage are used"
        )
    with VideoReader(source) as reader:  # whole: 455 frames where the header says 456 is no truncation
        assert sum(1 for _ in reader) == 455 and reader.truncation is None


def test_ends_early_allows_for_headers_that_estimate() -> None:
    assert not ends_early(455, 456) and not ends_early(10, None) and not ends_early(98, 100)
    assert ends_early(223, 456) and ends_early(16, 40) and ends_early(96, 100)


def test_grab_seek_and_rewind_move_through_the_same_frames(data_root) -> None:
    with VideoReader(data_root / "videos" / "realshort.mp4") as reader:
        frames = list(reader)
        reader.rewind()
        assert np.array_equal(reader.read(), frames[0])
        assert reader.grab() and reader.grab()
        assert np.array_equal(reader.read(), frames[3])
        reader.seek(0)  # the container's seek to the start is exact on every file
        assert np.array_equal(reader.read(), frames[0])
        while reader.grab():
            pass
        assert reader.truncation is None  # only a read from the start can tell


def test_frame_rate_falls_back_when_the_header_has_none(tmp_path) -> None:
    import cv2

    from engine.video import FALLBACK_FPS, frame_rate

    class NoRate:
        def get(self, _prop: int) -> float:
            return 0.0

    assert frame_rate(NoRate()) == FALLBACK_FPS  # type: ignore[arg-type]
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 12.0, (32, 24)) as writer:
        writer.write(np.zeros((24, 32, 3), np.uint8))
    capture = cv2.VideoCapture(str(path))
    assert frame_rate(capture) == 12.0
    capture.release()
