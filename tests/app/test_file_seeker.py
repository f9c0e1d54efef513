"""FileSeeker (PyAV jumps that decode only what the frame asked for needs) on real files: exact against a sequential
decode, and never trusted blindly by the source.

The seeker's own tests compare with PyAV's sequential decode. The source's compare with OpenCV's (the app's definition
of frame K); that the source's jumps are the seeker's also needs PyAV to convert colours as OpenCV does, which holds
when both wheels carry the same FFmpeg (they do here: libavutil 60.26) but not across versions (swscale's C path
differs from its SIMD one by up to 3): where it does not hold, those checks are skipped, and the source must still
give OpenCV's frames (it does: the fingerprints send its jumps the OpenCV way)."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.playback.file_seeker import FileSeeker
from app.playback.frame_memory import FrameMemory
from app.playback.sources import VideoFileSource
from engine.video.reader import VideoWriter
from tests.app.conftest import decode_all, needs_pyav_as_opencv


def _x264_clip(path: Path, frames: int, gop: int, seed: int) -> Path:
    """H.264 with B-frames (x264's defaults) and a keyframe every `gop` frames: a noise picture that moves, numbered."""
    background = np.random.default_rng(seed).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    with VideoWriter(path, 25.0, (96, 64)) as writer:
        writer._stream.codec_context.gop_size = gop  # type: ignore[union-attr]
        for index in range(frames):
            image = np.roll(background, index * (2 + seed), axis=1).copy()
            cv2.putText(image, str(index), (4, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
            writer.write(image)
    return path


@pytest.fixture(scope="module")
def h264_file(tmp_path_factory) -> Path:
    """Keyframes 12 frames apart: the jumps skip real work."""
    return _x264_clip(tmp_path_factory.mktemp("h264") / "b-frames.mp4", 60, gop=12, seed=0)


@pytest.fixture(scope="module")
def long_gop_file(tmp_path_factory) -> Path:
    """One keyframe in 120 frames (more than LONG_GOP_FRAMES): its frames are kept."""
    return _x264_clip(tmp_path_factory.mktemp("long") / "one-keyframe.mp4", 120, gop=300, seed=1)


def _pyav_frames(path: Path) -> list[np.ndarray]:
    """PyAV's sequential decode, BGR: what the seeker's jumps must give."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(container.streams.video[0])]


def _packet_kinds(path: Path) -> tuple[int, bool]:
    """(keyframes, whether any packet is shown at another time than it is decoded) of `path`."""
    import av

    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.pts is not None]
    return sum(p.is_keyframe for p in packets), any(p.pts != p.dts for p in packets)


def test_the_clip_is_what_the_tests_need(h264_file):
    keyframes, reordered = _packet_kinds(h264_file)
    assert keyframes >= 4 and reordered  # several GOPs, B-frames: the seeker's own case


def test_jumps_give_exactly_the_sequential_frames_and_reading_goes_on(h264_file):
    needs_pyav_as_opencv(h264_file)
    frames = _pyav_frames(h264_file)
    seeker = FileSeeker(h264_file)
    try:
        assert seeker.wait(10)
        assert seeker.usable and seeker.frame_count == len(frames) == 60
        for index in [59, 0, 37, 36, 11, 12, 13, 25, 1] + random.Random(0).sample(range(60), 10):
            assert np.array_equal(seeker.seek(index), frames[index]), f"jump to {index}"
            following = seeker.read()
            if index + 1 < len(frames):
                assert np.array_equal(following, frames[index + 1]), f"the frame after {index}"
            else:
                assert following is None
        assert seeker.seek(60) is None and seeker.seek(-1) is None
    finally:
        seeker.close()


def test_decode_order_timestamps_are_put_in_order_by_a_decoding_pass(data_root):
    """box.mp4's packets carry decode-order times (pts == dts on a file with B-frames, keyframes 250 frames apart):
    the table comes from decoding once, and jumps are still exact, the frames after them too."""
    path = data_root / "videos" / "box.mp4"
    needs_pyav_as_opencv(path)
    _, reordered = _packet_kinds(path)
    assert not reordered
    frames = _pyav_frames(path)
    seeker = FileSeeker(path)
    try:
        assert seeker.wait(30) and seeker.usable and seeker.frame_count == len(frames) == 455
        for index in [454, 0, 249, 250, 251, 3] + random.Random(2).sample(range(455), 6):
            assert np.array_equal(seeker.seek(index), frames[index]), f"jump to {index}"
            following = seeker.read()
            if index + 1 < len(frames):
                assert np.array_equal(following, frames[index + 1]), f"the frame after {index}"
    finally:
        seeker.close()


def test_the_source_jumps_through_the_seeker_and_plays_on_from_there(h264_file):
    needs_pyav_as_opencv(h264_file)
    frames = decode_all(h264_file)
    source = VideoFileSource(h264_file)
    try:
        assert source._index is not None and source._index.wait(10)
        assert source._seeker is not None and source._seeker.wait(10)
        for index in [50, 3, 41, 40, 22]:
            frame = source.seek(index)
            assert frame.index == index and np.array_equal(frame.image, frames[index])
            assert source._from_seeker  # the jump was the seeker's
        for index in range(23, 27):
            after = source.read()
            assert after is not None and after.index == index and np.array_equal(after.image, frames[index])
        assert source.seek_mismatches == source.seeker_mismatches == 0
    finally:
        source.close()


class _WrongSeeker(FileSeeker):
    """A seeker whose times are one frame off: what a file with misleading timestamps would give."""

    def seek(self, index):
        return super().seek(min(index + 1, self.frame_count - 1))


def test_a_wrong_answer_is_caught_by_the_fingerprints_and_the_file_goes_the_opencv_way(h264_file, monkeypatch):
    needs_pyav_as_opencv(h264_file)
    import app.playback.sources

    monkeypatch.setattr(app.playback.sources, "FileSeeker", _WrongSeeker)
    frames = decode_all(h264_file)
    source = VideoFileSource(h264_file)
    try:
        assert source._index is not None and source._index.wait(10)
        assert source._seeker is not None and source._seeker.wait(10)
        for index in [45, 7, 30]:
            assert np.array_equal(source.seek(index).image, frames[index]), f"jump to {index}"
        assert source.seeker_mismatches == 1  # the first jump; after it the seeker is not asked again
        assert source._seeker is None and not source._from_seeker
        after = source.read()
        assert after is not None and np.array_equal(after.image, frames[31])
    finally:
        source.close()


def test_where_pyav_refuses_a_damaged_packet_opencv_takes_over_at_the_same_frame(tmp_path):
    """A file cut inside a frame's JPEG header: PyAV raises on the cut packet, OpenCV passes over it; the source plays
    what OpenCV plays. (Cut at a packet's start, not at half the file's bytes: where half falls depends on the size
    of each frame, which differs between OpenCV's encoders, 4.x and 5.x, and a frame cut in its image data decodes
    differently in different FFmpeg builds.)"""
    import av

    from tests.app.conftest import write_video

    whole = write_video(tmp_path / "whole.avi", 40, fourcc="MJPG")
    with av.open(str(whole)) as container:
        starts = [packet.pos for packet in container.demux(video=0) if packet.size]
    cut = tmp_path / "half.avi"
    cut.write_bytes(whole.read_bytes()[: starts[20] + 60])
    needs_pyav_as_opencv(cut)
    frames = decode_all(cut)
    source = VideoFileSource(cut)
    try:
        assert source._index is not None and source._index.wait(30)
        assert source._seeker is not None and source._seeker.wait(10) and source._seeker.usable
        start = len(frames) - 6
        source.seek(len(frames) - 1)
        assert np.array_equal(source.seek(start).image, frames[start])  # a jump back: the seeker's
        assert source._from_seeker
        played = []
        while (frame := source.read()) is not None:
            played.append(frame)
        assert [f.index for f in played] == list(range(start + 1, len(frames)))
        assert all(np.array_equal(f.image, frames[f.index]) for f in played)
        assert source._seeker is None  # PyAV failed at the cut and was left
    finally:
        source.close()


def test_a_file_pyav_cannot_open_is_not_usable_and_a_closed_seeker_stops(tmp_path, h264_file):
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"not a video at all\n" * 100)
    seeker = FileSeeker(text)
    assert seeker.wait(10) and not seeker.usable and seeker.seek(0) is None and seeker.read() is None
    seeker.close()
    early = FileSeeker(h264_file)
    early.close()  # (perhaps while it reads the times): no thread left behind, nothing to jump with
    assert not early._thread.is_alive()


def test_frames_behind_come_from_a_second_decoder_and_leave_playback_where_it_was(h264_file):
    needs_pyav_as_opencv(h264_file)
    frames = decode_all(h264_file)
    source = VideoFileSource(h264_file)
    try:
        assert source._seeker is not None and source._seeker.wait(10)
        assert source.seek(50).index == 50
        behind = list(source.frames_behind(50, 8, lambda: True))
        assert [f.index for f in behind] == list(range(42, 50))
        assert all(np.array_equal(f.image, frames[f.index]) for f in behind)
        after = source.read()  # the file's own decoder did not move
        assert after is not None and after.index == 51 and np.array_equal(after.image, frames[51])
        assert [f.index for f in source.frames_behind(3, 8, lambda: True)] == [0, 1, 2]
        asked = iter([True, True, False])
        assert len(list(source.frames_behind(20, 8, lambda: next(asked)))) == 2  # stops when no longer wanted
    finally:
        source.close()
    dropped = VideoFileSource(h264_file)  # a file whose jumps went the OpenCV way: no second decoder, nothing behind
    try:
        assert dropped._seeker is not None and dropped._seeker.wait(10)
        dropped._drop_seeker()
        assert list(dropped.frames_behind(50, 8, lambda: True)) == []
    finally:
        dropped.close()


def test_keyframes_far_apart_keep_the_decoded_frames_and_jumps_take_them(long_gop_file, h264_file):
    needs_pyav_as_opencv(long_gop_file)
    keyframes, _ = _packet_kinds(long_gop_file)
    assert keyframes == 1
    frames = _pyav_frames(long_gop_file)
    seeker = FileSeeker(long_gop_file)
    try:
        assert seeker.wait_kept(30) and seeker.kept == len(frames) == 120
        seeker._container = None  # every jump now has to come from the frames kept (the decoder is gone)
        for index in [119, 0, 64, 63, 7] + random.Random(3).sample(range(120), 8):
            assert np.array_equal(seeker.seek(index), frames[index]), f"jump to {index}"
            if index + 1 < 120:
                assert np.array_equal(seeker.read(), frames[index + 1]), f"the frame after {index}"
        assert seeker.seek(117) is not None and seeker.skip(5) == 2 and seeker.read() is None  # the end
    finally:
        seeker.close()
    short = FileSeeker(h264_file)  # keyframes 12 frames apart: nothing kept
    try:
        assert short.wait_kept(30) and short.usable and short.kept == 0
    finally:
        short.close()


def test_reading_on_past_the_frames_kept_goes_on_with_the_decoder(long_gop_file):
    needs_pyav_as_opencv(long_gop_file)
    frames = _pyav_frames(long_gop_file)
    per_frame = 96 * 64 * 3 // 2  # YUV 4:2:0
    memory = FrameMemory(50 * per_frame)  # the budget for frames kept has room for the first 50
    seeker = FileSeeker(long_gop_file, memory=memory)
    try:
        assert seeker.wait_kept(30) and seeker.kept == 50 and memory.used == 50 * per_frame
        assert np.array_equal(seeker.seek(45), frames[45])
        for index in range(46, 70):  # across the end of the frames kept
            assert np.array_equal(seeker.read(), frames[index]), f"frame {index}"
        assert np.array_equal(seeker.seek(48), frames[48]) and seeker.skip(10) == 10
        assert np.array_equal(seeker.read(), frames[59])
        assert np.array_equal(seeker.seek(90), frames[90])  # not kept: decoded
        twin = seeker.twin()
        assert twin is not None and twin.kept == 50
        twin.close()
        assert memory.used == 50 * per_frame  # counted once, by the seeker that kept them
    finally:
        seeker.close()
    assert memory.used == 0  # closed: the budget has room again


def test_a_file_whose_colours_pyav_converts_otherwise_jumps_the_opencv_way(h264_file, monkeypatch):
    """Where PyAV's pixels are not OpenCV's (another FFmpeg build), the seeker is not used, and jumps stay exact."""
    monkeypatch.setattr(FileSeeker, "_converts_as_opencv", lambda self, container, stream: False)
    frames = decode_all(h264_file)
    source = VideoFileSource(h264_file)
    try:
        assert source._seeker is not None and source._seeker.wait(10) and not source._seeker.usable
        for index in [50, 3, 41]:
            assert np.array_equal(source.seek(index).image, frames[index]), f"jump to {index}"
        assert source._seeker is None and not source._from_seeker
    finally:
        source.close()
