"""Video files for the renderer and the benchmark: an RGB frame reader and an mp4 writer (OpenCV).

The reader checks what it opens and says clearly what is wrong (missing, empty, not a video, no readable frame);
a truncated file yields the frames before the damage. The writer is a context manager that always releases the
file, so a render that stops half-way (Ctrl+C, an error) leaves a playable video of the frames written so far.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from engine.closing import Closing
from engine.errors import VideoError


class VideoReader(Closing):
    """RGB uint8 frames of a video file. Raises VideoError when the file cannot be read as a video."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"video {self.path} does not exist")
        if self.path.is_dir():
            raise VideoError(f"{self.path} is a folder, not a video file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"video {self.path} is an empty file")
        self.capture = cv2.VideoCapture(str(self.path))
        if not self.capture.isOpened():
            raise VideoError(f"{self.path} is not a video OpenCV can read (unknown format or damaged file)")
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise VideoError(f"{self.path} holds no readable frame (damaged or not a video)")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0  # some containers report 0 or nonsense
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # a hint only: truncated files over-report it

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            first, self._first = self._first, None
            yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

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
