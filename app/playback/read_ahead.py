"""ReadAhead: a video file decoded (and made ready for the model) in a thread of its own, a frame or two ahead.

On two cores the model runs on one while the other decodes the next frame, converts it and resizes it for the model
and for the view (`prepare`, the engine's work that needs no model): the stages overlap instead of queueing. Seeking
stops the thread for a moment, moves the file, and throws away whatever was decoded for the old position.

Dragging the slider asks for frames a few apart. A frame already decoded (one of the frames ahead, or one handed
out lately: up to RECENT_BYTES of them, counted in the app's budget for frames kept, app/playback/frame_memory.py) is
handed out again at once, and the decoder moves the file after it in its
own thread: measured on the 720p clip (keyframes a second apart), the file's own seek costs 8 ms a few frames forward
but 49 ms a few frames back with OpenCV (24-28 ms with app.playback.file_seeker), and under load two to three times
that, before the model even starts.

While the player is paused (no frame read since the last seek), the decoder first leaves both cores to the model
that explains the frame just sought (PAUSED_AFTER), and a thread of low priority decodes the BEHIND frames before
it with a decoder of its own (`frames_behind` of the source, where the file allows it), so that a drag back finds
them in memory too (a drag forward is a short decode forward anyway). Its own decoder and its low priority keep it
out of the way: a seek never waits for it, and on a busy machine it takes only what is left. (Done in the decoding
thread with the file's own decoder it made jumps slower: on box.mp4, whose keyframes are 8 s apart, a jump waited
for a frame behind the last one: 253 ms median under load against 198 before.)

Plain Python (threads only), so it is tested headless. It reads through the wrapped source, which it alone uses
while it runs (every access to the source holds one lock).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace

import numpy as np

from app.playback.frame_index import lower_this_threads_priority
from app.playback.frame_memory import FRAME_MEMORY, RECENT_BYTES, FrameMemory
from app.playback.sources import Frame, FrameSource

Prepare = Callable[[np.ndarray], object]

_END = object()  # the end of the file was reached
RECENT_AT_LEAST = 4  # frames kept for seeks to take again: never fewer than this many, whatever the budget says
BEHIND = 8  # frames before the one sought that a paused reader decodes for a drag back (the benchmark's 1-8)
PAUSED_AFTER = 0.2  # seconds after a seek without a read: the player is paused (playback reads every 0.1 s at 10 fps)


class ReadAhead:
    """Sequential frames of `source` (seekable, a file) decoded up to `depth` frames ahead; `prepare(image)`
    (optional, replaceable) runs on each frame in the same thread and its result travels as `Frame.prepared`."""

    def __init__(self, source: FrameSource, depth: int = 2, memory: FrameMemory = FRAME_MEMORY) -> None:
        """`memory`: what the frames kept for seeks count against (besides RECENT_BYTES of their own)."""
        self.source = source
        self._budget = memory
        self._lock = threading.Lock()  # held around every use of `source`
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=max(depth, 1))
        self._generation = 0  # bumped by a seek: what was decoded before it is thrown away
        self._prepare: Prepare | None = None
        self._prepare_generation = 0  # bumped by set_prepare: frames prepared before it are prepared again
        self._next = source.position or 0  # the index of the frame read() returns next
        self._recent: OrderedDict[int, Frame] = OrderedDict()  # index -> a frame handed out (or decoded behind)
        self._recent_bytes = 0
        self._memory = threading.Lock()  # held around every use of `_recent` (read() takes frames without `_lock`)
        self._reposition: int | None = None  # where the decoder moves the file before reading on (after a seek)
        self._sought: int | None = None  # the frame of the last seek while no frame has been read since
        self._sought_at = 0.0
        self._behind_started: int | None = None  # the frame sought whose frames behind are (being) decoded
        self._behind_filled: int | None = None  # ... and are in memory (or could not be)
        self._behind_wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"read-ahead-{source.label}", daemon=True)
        self._thread.start()
        self._behind = threading.Thread(target=self._fill_behind, name=f"behind-{source.label}", daemon=True)
        self._behind.start()

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
        self._sought = None  # playing: the decoder reads ahead at once
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
            self._sought, self._sought_at = index, time.perf_counter()
            self._behind_wake.set()
            prepare = self._prepare
            generation = self._prepare_generation
            known = self._recalled(index)
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
        self._behind_wake.set()
        self._drain()
        for thread in (self._thread, self._behind):
            if threading.current_thread() is not thread:
                thread.join(timeout=5)
        with self._memory:
            while self._recent:
                self._let_go(self._recent.popitem()[1])

    # -- the decoding thread ----------------------------------------------------------------------------------------
    def _decode(self) -> None:
        while not self._stop.is_set():
            sought = self._sought
            if sought is not None and time.perf_counter() - self._sought_at < PAUSED_AFTER:
                self._stop.wait(0.005)  # a frame was just sought: the model explains it first
                continue
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

    # -- the thread behind ----------------------------------------------------------------------------------------
    def _fill_behind(self) -> None:
        """(its own thread, low priority) While paused: the BEHIND frames before the one sought, into memory."""
        lower_this_threads_priority()
        while not self._stop.is_set():
            self._behind_wake.wait(0.5)
            self._behind_wake.clear()
            sought = self._sought
            if sought is None or self._behind_started == sought or self._stop.is_set():
                continue
            wait = PAUSED_AFTER - (time.perf_counter() - self._sought_at)
            if wait > 0:
                self._stop.wait(wait)
                self._behind_wake.set()  # look again (another seek may have come meanwhile)
                continue
            self._behind_started = sought
            self._decode_behind(sought)
            self._behind_filled = sought

    def _decode_behind(self, sought: int) -> None:
        frames_behind = getattr(self.source, "frames_behind", None)
        known = self._recalled(sought)
        if frames_behind is None or known is None:
            return
        if _bytes_of(known) * (BEHIND + RECENT_AT_LEAST) > RECENT_BYTES:
            return  # frames so large that those behind would push out the one on screen

        def wanted() -> bool:
            return self._sought == sought and not self._stop.is_set()

        try:
            with closing(frames_behind(sought, BEHIND, wanted)) as frames:
                for frame in frames:
                    if self._recalled(frame.index) is not None:
                        continue
                    prepare, generation = self._prepare, self._prepare_generation
                    frame = self._prepared(frame, prepare, generation)
                    if wanted():
                        self._remember(frame)
        except Exception:  # noqa: BLE001 (frames behind are a convenience: a seek to one decodes it as usual)
            return

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
        """Keep `frame` for a seek to take again; the least recently used go first, beyond RECENT_BYTES or when the
        app's budget for frames kept is full (RECENT_AT_LEAST stay, counted all the same)."""
        if frame.index is None:
            return
        size = _bytes_of(frame)
        with self._memory:
            old = self._recent.pop(frame.index, None)
            if old is not None:
                self._let_go(old)
            while True:
                if len(self._recent) < RECENT_AT_LEAST:
                    self._budget.take(size, force=True)
                    break
                if self._recent_bytes + size <= RECENT_BYTES and self._budget.take(size):
                    break
                self._let_go(self._recent.popitem(last=False)[1])
            self._recent[frame.index] = frame
            self._recent_bytes += size

    def _let_go(self, frame: Frame) -> None:
        """(holding `_memory`) A frame no longer kept: its bytes back to the budget."""
        size = _bytes_of(frame)
        self._recent_bytes -= size
        self._budget.give(size)

    def _recalled(self, index: int) -> Frame | None:
        with self._memory:
            return self._recent.get(index)

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


def _bytes_of(frame: Frame) -> int:
    """The frame's picture and the arrays its preparation added (at 720p the views' copy and the model's input add a
    quarter to the picture's 2.7 MB)."""
    total = frame.image.nbytes
    for value in getattr(frame.prepared, "__dict__", {}).values():
        if isinstance(value, np.ndarray) and value is not frame.image:
            total += value.nbytes
    return total
