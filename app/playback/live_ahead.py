"""LiveAhead: a live source's newest picture made ready for the model and the views in a thread of its own, while
the pipeline explains the one before (what ReadAhead does for files, without reading ahead: a live source has no
"ahead", and a queue would only put the picture shown further behind now).

One picture at most waits ready. The thread takes the source's newest picture as soon as the pipeline has taken the
one ready before, converts and prepares it (`prepare`, the engine's work that needs no model: on the 720p stream
about 15 ms of the pipeline's 45 ms per frame), and waits again. So on two cores the conversion and the resizing
run beside the model instead of before it; the picture waits at most one explanation for the pipeline.

Plain Python (threads only), tested headless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from app.playback.frames import Frame, FrameSource
from engine.errors import VideoError

Prepare = Callable[[np.ndarray], object]


class LiveAhead:
    def __init__(self, source: FrameSource, frame_wait: float = 0.25) -> None:
        """`frame_wait`: how long `read()` waits for a picture before it says there is none (the pipeline's thread
        serves requests meanwhile)."""
        self.source = source
        self._frame_wait = frame_wait
        self._condition = threading.Condition()
        self._ready: Frame | BaseException | None = None
        self._prepare: Prepare | None = None
        self._prepare_generation = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-ahead-{source.label}", daemon=True)
        self._thread.start()

    @property
    def position(self) -> int | None:
        return None

    def set_prepare(self, prepare: Prepare | None) -> None:
        """What to do with each picture (None: nothing); one prepared before is told apart by `Frame.prepared_with`."""
        with self._condition:
            self._prepare = prepare
            self._prepare_generation += 1

    @property
    def prepare_generation(self) -> int:
        return self._prepare_generation

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._condition:  # wait until the pipeline took the picture ready before
                self._condition.wait_for(lambda: self._ready is None or self._stop.is_set())
                if self._stop.is_set():
                    return
            try:
                frame = self.source.read()
            except VideoError as error:  # the source gave up: said where the pipeline reads
                with self._condition:
                    self._ready = error
                    self._condition.notify_all()
                return
            if frame is None:
                continue  # nothing new yet (the source waited a moment)
            with self._condition:
                prepare, generation = self._prepare, self._prepare_generation
            if prepare is not None:
                try:
                    frame = replace(frame, prepared=prepare(frame.image), prepared_with=generation)
                except Exception:  # noqa: BLE001 (e.g. its model closed meanwhile: the pipeline prepares it itself)
                    pass
            with self._condition:
                self._ready = frame
                self._condition.notify_all()

    def read(self) -> Frame | None:
        """The newest picture, made ready; None when none came within `frame_wait` (the one on screen stays)."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._ready is not None, self._frame_wait):
                return None
            ready, self._ready = self._ready, None
            self._condition.notify_all()
        if isinstance(ready, BaseException):
            raise ready
        return ready

    def drop_ready(self) -> None:
        """Throw away the picture waiting (playing again after a pause: it is as old as the pause)."""
        with self._condition:
            if isinstance(self._ready, Frame):
                self._ready = None
                self.source.dropped += 1
                self._condition.notify_all()

    def skip(self, count: int) -> None:
        """Nothing to pass over: a live source always gives its newest picture."""

    def seek(self, index: int) -> Frame:
        return self.source.seek(index)  # (a live source refuses)

    def close(self) -> None:
        """Stops the thread (the source is closed by its owner)."""
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
