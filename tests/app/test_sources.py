"""Frame sources on real files: frame-accurate seeking (checked against a sequential decode), clear errors for
files that are not videos, a camera that disappears mid-stream."""

import random
import time

import numpy as np
import pytest

from app.playback.sources import CameraSource, ImageSource, VideoFileSource, open_source
from engine.errors import VideoError
from tests.app.conftest import decode_all, write_video


def _assert_seeks_exact(source, frames, positions):
    for index in positions:
        frame = source.seek(index)
        assert frame.index == index
        assert np.array_equal(frame.image, frames[index]), f"seek to {index} showed another frame"


def test_seeking_shows_exactly_frame_k(video_file, video_frames):
    source = open_source(video_file)
    try:
        assert isinstance(source, VideoFileSource)
        assert source._index is not None and source._index.wait(10)
        positions = [39, 0, 17, 16, 18, 5, 30, 29, 1, 38, 12]
        _assert_seeks_exact(source, video_frames, positions)
        assert source.seek_mismatches == 0
        after = source.read()  # playback goes on from the sought frame
        assert after is not None and after.index == 13 and np.array_equal(after.image, video_frames[13])
    finally:
        source.close()


def test_real_h264_clip_seeks_exactly_and_gets_the_true_frame_count(data_root):
    path = data_root / "videos" / "box.mp4"  # header says 456 frames, there are 455
    frames = decode_all(path)
    source = VideoFileSource(path)
    try:
        assert source._index is not None and source._index.wait(30)
        assert source.refresh_count() and source.frame_count == len(frames)
        _assert_seeks_exact(source, frames, random.Random(0).sample(range(len(frames)), 8) + [len(frames) - 1])
        with pytest.raises(VideoError, match="no frame 455"):
            source.seek(len(frames))
    finally:
        source.close()


class _InexactSeekSource(VideoFileSource):
    """A container whose frame seek lands `offset` frames off while claiming success: what CAP_PROP_POS_FRAMES
    does on some files (open GOPs, timestamps not starting at 0). Jumps take the OpenCV way (no FileSeeker), the
    way every jump goes on files whose timestamps the seeker cannot use."""

    offset = 0

    def _ready_seeker(self):
        return None

    def _container_seek(self, index):
        landed = super()._container_seek(min(max(index + self.offset, 0), 39))
        self._next = index  # OpenCV believes it is where it was asked to be
        return landed


@pytest.mark.parametrize("offset", [5, -7, 60])
def test_a_container_seek_that_lands_elsewhere_is_detected_and_corrected(video_file, video_frames, offset):
    source = _InexactSeekSource(video_file)
    source.offset = offset
    try:
        assert source._index is not None and source._index.wait(10)
        _assert_seeks_exact(source, video_frames, [33, 2, 27])
        assert source.seek_mismatches >= 1
    finally:
        source.close()


def test_still_image_is_one_frame(tmp_path, video_frames):
    import cv2

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(video_frames[3], cv2.COLOR_RGB2BGR))
    source = open_source(path)
    assert isinstance(source, ImageSource) and source.frame_count == 1
    assert np.array_equal(source.read().image, video_frames[3])
    assert source.read() is None
    assert np.array_equal(source.seek(0).image, video_frames[3])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("random.mp4", bytes(random.Random(1).randrange(256) for _ in range(20000)), "could not be opened as a video"),
        ("notes.txt", b"this is not a video\n" * 50, "is a text file, not a video"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "could not be read as an image"),
    ],
)
def test_files_that_are_not_videos_raise_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message):
        open_source(path)


def test_truncated_video_is_refused(tmp_path, data_root):
    path = tmp_path / "truncated.mp4"
    path.write_bytes((data_root / "videos" / "realshort.mp4").read_bytes()[:30000])
    with pytest.raises(VideoError):
        open_source(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        open_source(tmp_path / "nothing.mp4")
    with pytest.raises(VideoError, match="is a folder"):
        open_source(tmp_path)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(VideoError, match="camera 9 did not open"):
        open_source(9)


def test_camera_serves_the_newest_frame_and_says_when_it_stops(tmp_path):
    # A capture device that delivers 12 frames (faster than we take them) and then stops, like an unplugged webcam.
    device = write_video(tmp_path / "device.avi", 12, fourcc="MJPG")
    frames = decode_all(device)
    camera = CameraSource(str(device), max_failures=3)
    delivered = []
    try:
        while not camera.lost:
            frame = camera.read()
            if frame is not None:
                assert frame.index is None and frame.image.shape == (64, 96, 3)
                delivered.append(frame.image)
            time.sleep(0.05)  # a slow consumer: frames captured meanwhile are replaced, not queued
        while (frame := camera.read()) is not None:  # the last one, if not taken yet
            delivered.append(frame.image)
        assert "stopped sending pictures" in (camera.take_notice() or "")
    finally:
        camera.close()
    assert np.array_equal(delivered[-1], frames[-1])  # the newest frame is always served
    assert camera.dropped > 0 and camera.dropped + len(delivered) == len(frames)


def test_copied_demo_clip_is_the_shared_one(data_root):
    from engine.paths import DEMO_CLIP

    assert DEMO_CLIP.exists(), "assets/demo/box.mp4 (the demo clip the app falls back to) is missing"
    assert DEMO_CLIP.read_bytes() == (data_root / "videos" / "box.mp4").read_bytes()
