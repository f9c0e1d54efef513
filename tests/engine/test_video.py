"""The renderer's video reader and writer: clear errors, truncated files, background decoding."""

from __future__ import annotations

import itertools
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.errors import VideoError
from engine.video.reader import VideoReader, VideoWriter, ends_early


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


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level boxes in file order (ftyp, moov, mdat, ...)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("ascii"))
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


def test_writer_writes_h264_that_players_can_start_at_once(tmp_path) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 30000 / 1001, (64, 48)) as writer:
        for value in (0, 128, 255):
            writer.write(np.full((48, 64, 3), value, np.uint8))
        with pytest.raises(ValueError, match="64x48"):
            writer.write(np.zeros((10, 10, 3), np.uint8))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(30000, 1001)  # NTSC's rate exactly
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: the index first, so browsers play while loading
    with VideoReader(path) as reader:  # OpenCV reads it too
        frames = list(reader)
    assert len(frames) == len(decoded) == 3
    # flat greys through H.264 (yuv420p, limited range) and back; 3 levels: x264 at CRF 20 on flat pictures is
    # near-lossless, the rest is the 8-bit limited-range round trip
    for frame, value in zip(frames + decoded, (0, 128, 255) * 2):
        assert abs(float(frame.mean()) - value) < 3


def test_odd_sizes_are_padded_to_even_ones_keeping_every_pixel(tmp_path) -> None:
    frame = np.zeros((47, 65, 3), np.uint8)
    frame[:, -1] = 255  # the last column and row: repeated, never cut
    frame[-1, :] = 255
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 25.0, (65, 47)) as writer:
        writer.write(frame)
    assert writer.encoded_size == (66, 48)
    with VideoReader(path) as reader:
        (back,) = list(reader)
    assert back.shape == (48, 66, 3)
    assert back[:, -2:].mean() > 200 and back[-2:, :].mean() > 200 and back[:40, :60].mean() < 10


def test_a_writer_without_frames_leaves_no_file_not_even_an_older_one(tmp_path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"an older export")
    with VideoWriter(path, 25.0, (64, 48)):
        pass
    assert not path.exists()


def test_a_video_that_cannot_be_written_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    for bad in (tmp_path, tmp_path / "file" / "out.mp4"):
        with pytest.raises(VideoError, match="cannot write a video"):
            VideoWriter(bad, 25.0, (64, 48))


def test_batches_hold_every_frame_in_order_up_to_the_limit(data_root) -> None:
    with VideoReader(data_root / "videos" / "realshort.mp4") as reader:
        frames = list(reader)
    with VideoReader(data_root / "videos" / "realshort.mp4") as reader:
        assert [len(batch) for batch in reader.batches(8)] == [8, 8, 8, 8, 4]
    with VideoReader(data_root / "videos" / "realshort.mp4") as reader:
        batches = list(reader.batches(4, limit=10))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    assert all(np.array_equal(a, b) for a, b in zip([f for batch in batches for f in batch], frames[:10]))


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

    from engine.video.reader import FALLBACK_FPS, frame_rate

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
