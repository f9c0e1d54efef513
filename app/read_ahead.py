"""ReadAhead: a video file decoded (and made ready for the model) in a thread of its own, a frame or two ahead.

On two cores the model runs on one while the other decodes the next frame, converts it and resizes it for the model
and for the view (`prepare`, the engine's work that needs no model): the stages overlap instead of queueing. Seeking
stops the thread for a moment, moves the file, and throws away whatever was decoded for the old position.

Dragging the slider asks for frames a few apart. A frame already decoded (one of the frames ahead, or one of the
last RECENT frames handed out) is handed out again at once, and the decoder moves the file after it in its own
thread: measured on the 720p clip (keyframes a second apart), the file's own seek costs 8 ms a few frames forward
but 49 ms a few frames back with OpenCV (24-28 ms with app.file_seeker), and under load two to three times that,
before the model even starts.

Plain Python (threads only), so it is tested headless. It reads through the wrapped source, which it alone uses
while it runs (every access to the source holds one lock).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from app.sources import Frame, FrameSource

Prepare = Callable[[np.ndarray], object]

_END = object()  # the end of the file was reached
RECENT = 12  # frames handed out that a seek may take again (a drag back; 12 prepared 720p frames: ~45 MB)


class ReadAhead:
    """Sequential frames of `source` (seekable, a file) decoded up to `depth` frames ahead; `prepare(image)`
    (optional, replaceable) runs on each frame in the same thread and its result travels as `Frame.prepared`."""

    def __init__(self, source: FrameSource, depth: int = 2) -> None:
        self.source = source
        self._lock = threading.Lock()  # held around every use of `source`
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=max(depth, 1))
        self._generation = 0  # bumped by a seek: what was decoded before it is thrown away
        self._prepare: Prepare | None = None
        self._prepare_generation = 0  # bumped by set_prepare: frames prepared before it are prepared again
        self._next = source.position or 0  # the index of the frame read() returns next
        self._recent: OrderedDict[int, Frame] = OrderedDict()  # index -> a frame handed out lately
        self._reposition: int | None = None  # where the decoder moves the file before reading on (after a seek)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"read-ahead-{source.label}", daemon=True)
        self._thread.start()

    @property
    def position(self) -> int:
        return self._next

    def set_prepare(self, prepare: Prepare | None) -> None:
        """What to do with each frame ahead (None: nothing). Frames already queued keep their old preparation;
        the caller tells them apart by `Frame.prepared_with` == `prepare_generation`."""
        with self._lock:
            self._prepare = prepare
            self._prepare_generation += 1

    @property
    def prepare_generation(self) -> int:
        return self._prepare_generation

    def read(self) -> Frame | None:
        """The next frame (waits for the decoder), or None at the end of the file."""
        while True:
            generation, item = self._queue.get()
            if generation != self._generation:
                continue  # decoded for the position before a seek
            if item is _END:
                return None  # (the decoder says so again for every read until a seek)
            if isinstance(item, BaseException):
                raise item  # the decoder's error (a damaged file), raised where the frame was asked for
            assert isinstance(item, Frame)
            self._next = (item.index or 0) + 1
            # a file's frame counts as captured when the player takes it: it was decoded ahead on purpose, and the
            # latency the status bar shows is the pipeline's, not the read-ahead queue's (that showed 300 ms at 10 fps)
            item = replace(item, captured_at=time.perf_counter())
            self._remember(item)
            return item

    def skip(self, count: int) -> None:
        for _ in range(count):
            if self.read() is None:
                return

    def seek(self, index: int) -> Frame:
        """Frame `index` (exact: the source's own seek, or a frame decoded already), and reading ahead from there."""
        with self._lock:
            self._generation += 1
            for ahead in self._drain():
                self._remember(ahead)
            prepare = self._prepare
            generation = self._prepare_generation
            known = self._recent.get(index)
            if known is not None:  # decoded already: the decoder moves the file after it, in its own time
                self._reposition = index + 1
                frame = replace(known, captured_at=time.perf_counter())
            else:
                self._reposition = None
                frame = self.source.seek(index)
        self._next = index + 1
        if known is not None and known.prepared_with == generation:
            self._remember(frame)
            return frame
        frame = self._prepared(frame, prepare, generation)
        self._remember(frame)
        return frame

    def close(self) -> None:
        """Stop the thread (the caller closes the source)."""
        self._stop.set()
        self._drain()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    # -- the decoding thread ----------------------------------------------------------------------------------------
    def _decode(self) -> None:
        while not self._stop.is_set():
            item: object
            with self._lock:
                generation = self._generation
                at_end = self._queue_holds_end(generation)
                try:
                    frame = None if at_end else self._read_on()
                except Exception as error:  # noqa: BLE001 (handed to the reader, raised there)
                    frame, item = None, error
                else:
                    item = _END
                prepare, prepare_generation = self._prepare, self._prepare_generation
            if at_end:
                self._stop.wait(0.01)  # the end was reached: nothing to do until a seek
                continue
            if frame is not None:
                item = self._prepared(frame, prepare, prepare_generation)
            self._put(generation, item)

    def _read_on(self) -> Frame | None:
        """The next frame of the file; after a seek answered from memory, first the frame after that one."""
        index, self._reposition = self._reposition, None
        if index is None:
            return self.source.read()
        count = self.source.frame_count
        if count is not None and index >= count:
            return None
        return self.source.seek(index)

    def _remember(self, frame: Frame) -> None:
        if frame.index is None:
            return
        self._recent[frame.index] = frame
        self._recent.move_to_end(frame.index)
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    def _queue_holds_end(self, generation: int) -> bool:
        with self._queue.mutex:
            return any(entry == (generation, _END) for entry in self._queue.queue)

    def _put(self, generation: int, item: object) -> None:
        while not self._stop.is_set() and generation == self._generation:
            try:
                self._queue.put((generation, item), timeout=0.05)
                return
            except queue.Full:
                continue

    def _drain(self) -> list[Frame]:
        """Empty the queue; the frames it held (decoded ahead)."""
        frames: list[Frame] = []
        while True:
            try:
                _, item = self._queue.get_nowait()
            except queue.Empty:
                return frames
            if isinstance(item, Frame):
                frames.append(item)

    @staticmethod
    def _prepared(frame: Frame, prepare: Prepare | None, generation: int) -> Frame:
        if prepare is None:
            return frame
        return replace(frame, prepared=prepare(frame.image), prepared_with=generation)
