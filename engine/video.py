"""Video files: the one reader (OpenCV) for the app's file source, the renderer and the benchmark; an mp4 writer.

The reader checks what it opens and says clearly what is wrong (missing, empty, a folder, a text file, not a video,
no decodable frame). It decodes one frame at a time (`read` RGB, `read_bgr` as OpenCV gives it, `grab` to pass
over one) and can jump with the container's seek (`seek`, which may land elsewhere on some files: the app checks
every jump against fingerprints) or from the very start (`rewind`, always exact). A truncated file yields the frames
before the damage; once a read from the start reaches the end, `truncation` says whether the file ended before the
frame count its header announces, so that callers can say it once and go on.

The writer is a context manager that always releases the file, so a render that stops half-way (Ctrl+C, an error)
leaves a playable video of the frames written so far.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from engine.closing import Closing
from engine.errors import VideoError

# FFmpeg prints decoder chatter on seeks and on damaged files ("non-intra slice in an IDR NAL unit", "partial
# file"); what matters reaches the user as a VideoError or as `truncation`. Read when the first capture opens.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

FALLBACK_FPS: Final = 25.0
"""The frame rate of a video (or camera) whose header gives none or nonsense: FFmpeg's own assumption."""

_TEXT_CODECS = {b"ansi", b"bint", b"xbin", b"idf\x00"}  # FFmpeg's renderers of text files ("plays" any text file)


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The capture's frames per second; FALLBACK_FPS when the container reports 0 or nonsense."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1000 else FALLBACK_FPS


def ends_early(frames_read: int, header_count: int | None) -> bool:
    """True when a file holds clearly fewer frames than its header announces.

    Headers only estimate their frame count (box.mp4 announces 456 and holds 455; variable frame rates are worse),
    so only a shortfall of more than 2% and more than 2 frames counts.
    """
    if not header_count:
        return False
    return header_count - frames_read > max(2.0, 0.02 * header_count)


def truncation_note(path: str | Path, frames_read: int, header_count: int | None) -> str | None:
    """The one line that says a file ends early (None when it does not)."""
    if not ends_early(frames_read, header_count):
        return None
    return (
        f"{Path(path).name} ends early: {frames_read} of the {header_count} frames its header announces can be read "
        f"(a truncated or damaged file); the frames before the damage are used"
    )


class VideoReader(Closing):
    """Frames of a video file, one at a time. Raises VideoError when the file cannot be read as a video."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.capture = _open_capture(self.path)
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise VideoError(f"{self.path} holds no frame that can be decoded (the file is damaged or not a video)")
        self._first: np.ndarray | None = first  # decoded to check the file; handed out by the first read
        self.height, self.width = first.shape[:2]
        self.fps = frame_rate(self.capture)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # the header's count: a hint (truncated files over-report)
        self.frames_read = 0  # frames passed since the open (or rewind); a position only while `_from_start`
        self._from_start = True  # no container seek since the open: frames_read counts the file's frames
        self.truncation: str | None = None  # set when a read from the start ends early (see truncation_note)

    # -- one frame at a time --------------------------------------------------------------------------------------
    def read_bgr(self) -> np.ndarray | None:
        """The next frame as OpenCV decodes it, (H, W, 3) uint8 BGR; None at the end of the file."""
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                self._at_end()
                return None
        self.frames_read += 1
        return frame

    def read(self) -> np.ndarray | None:
        """The next frame, (H, W, 3) uint8 RGB; None at the end of the file."""
        frame = self.read_bgr()
        return None if frame is None else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def grab(self) -> bool:
        """Pass over the next frame without converting it; False at the end of the file."""
        if self._first is not None:
            self._first = None
        elif not self.capture.grab():
            self._at_end()
            return False
        self.frames_read += 1
        return True

    def seek(self, index: int) -> None:
        """The container's seek: the next read is frame `index` if the container's index is right (not always:
        open GOPs, timestamps that do not start at 0; the app checks every jump against fingerprints)."""
        self._first = None
        self._from_start = False
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)

    def rewind(self) -> None:
        """Back to frame 0 by reopening the file: reading from the very start is always exact."""
        self.capture.release()
        self.capture = _open_capture(self.path)
        self._first = None
        self.frames_read = 0
        self._from_start = True

    def _at_end(self) -> None:
        if self._from_start and self.truncation is None:
            self.truncation = truncation_note(self.path, self.frames_read, self.frame_count)

    # -- all frames -----------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        """RGB frames to the end of the file."""
        while (frame := self.read()) is not None:
            yield frame

    def prefetched(self, depth: int = 4) -> Iterator[np.ndarray]:
        """The same frames, decoded ahead by a background thread (OpenCV releases the GIL while decoding), so
        that decoding overlaps the explaining. Stopping early (break) ends the thread."""
        frames: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def decode() -> None:
            try:
                for frame in self:
                    while not stop.is_set():
                        try:
                            frames.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                frames.put(None)
            except BaseException as error:  # noqa: BLE001 (handed to the consumer, raised there)
                frames.put(error)

        worker = threading.Thread(target=decode, name="video-decode", daemon=True)
        worker.start()
        try:
            while True:
                item = frames.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)

    def close(self) -> None:
        self.capture.release()


class VideoWriter(Closing):
    """Writes RGB uint8 frames of one size to an .mp4 (MPEG-4 part 2, `mp4v`: in every OpenCV build)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = size  # (width, height)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, size)
        if not self.writer.isOpened():
            raise VideoError(f"cannot write a video to {self.path} (folder not writable, or not an .mp4 name?)")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} for a {self.size[0]}x{self.size[1]} video")
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self.writer.release()  # writes the container's index: without it the file does not play


def _open_capture(path: Path) -> cv2.VideoCapture:
    """An OpenCV capture of a file that exists, is not empty and is not text; VideoError otherwise."""
    if not path.exists():
        raise VideoError(f"{path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is an empty file, not a video")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path} could not be opened as a video (not a video file, damaged, or an unknown codec)")
    codec = (int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF).to_bytes(4, "little")
    if codec in _TEXT_CODECS:
        capture.release()
        raise VideoError(f"{path} is a text file, not a video or an image")
    return capture
