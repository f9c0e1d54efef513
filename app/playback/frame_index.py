"""FrameIndex: a fingerprint of every frame of a video, from one sequential decode in a background thread.

Sequential decoding defines what "frame K" is; the fingerprints let the video source check (and correct) every
container seek, and give the exact frame count that file headers only estimate.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from engine.errors import VideoError
from engine.video.reader import VideoReader

STOP_WAIT_S = 20.0  # the longest `stop` waits for the thread (it returns as soon as the thread ends)
_THUMBNAIL_SIZE = (64, 48)  # area-averaged; consecutive frames of real footage differ at this size


def thumbnail_key(bgr: np.ndarray) -> bytes:
    """A 16-byte fingerprint of a decoded frame."""
    thumbnail = cv2.resize(bgr, _THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    return hashlib.blake2b(thumbnail.tobytes(), digest_size=16).digest()


class FrameIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: list[bytes] = []
        self._positions: dict[bytes, list[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self.error: str | None = None
        self.truncation: str | None = None  # once done: the note that the file ends before its header's count
        self._thread = threading.Thread(target=self._build, name=f"index-{path.name}", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        lower_this_threads_priority()  # the live pipeline comes first; the index only has to be ready by a seek
        try:
            reader = VideoReader(self.path)
        except VideoError as error:
            self.error = f"the file could not be opened a second time: {error}"
            self._finished.set()
            return
        try:
            while not self._stop.is_set():
                bgr = reader.read_bgr()
                if bgr is None:
                    self.truncation = reader.truncation
                    break
                key = thumbnail_key(bgr)
                with self._lock:
                    self._positions.setdefault(key, []).append(len(self._keys))
                    self._keys.append(key)
        finally:
            reader.close()
            self._finished.set()

    @property
    def done(self) -> bool:
        return self._finished.is_set() and not self._stop.is_set()

    @property
    def count(self) -> int:
        """Frames indexed so far (the exact frame count once `done`)."""
        with self._lock:
            return len(self._keys)

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def key(self, index: int) -> bytes | None:
        """The fingerprint of frame `index`, or None while the index has not got that far."""
        with self._lock:
            return self._keys[index] if 0 <= index < len(self._keys) else None

    def locate(self, key: bytes) -> int | None:
        """The frame with this fingerprint, when exactly one frame has it."""
        with self._lock:
            positions = self._positions.get(key, [])
            return positions[0] if len(positions) == 1 else None

    def stop(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            # it stops after the frame it decodes; at a low priority on busy cores that took more than 2 s, and a
            # thread still in OpenCV when the interpreter ends aborts it ("exception not rethrown")
            self._thread.join(timeout=STOP_WAIT_S)


def lower_this_threads_priority(niceness: int = 15) -> None:
    """Linux schedules threads as tasks: a nice value for this thread alone. Elsewhere, nothing happens."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass
