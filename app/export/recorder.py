"""A recording of the live view: pictures encoded to a fragmented H.264 MP4 in a thread of its own (plain Python).

The live loop hands over each picture it shows with `Recorder.offer` and never waits on the encoder: what it offers
goes through a queue of QUEUE_FRAMES and is composed and encoded in the recorder's thread. When the encoder falls
behind and the queue is full, the picture is left out (counted in `left_out`, never waited for): the video then shows
the picture before it a frame longer, as the screen did when the live view passed over a frame. Nothing is
duplicated: every frame carries its own time (`PlaybackTimes`), in periods of the source's frame rate, so the
recording keeps the source's pace whatever is left out, and its frame count says what was really shown.

The file is written in fragments (engine.video.reader.VideoWriter, `fragments`): a process killed mid-recording
leaves a file that plays up to its last second; `close` finishes it properly.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, TypeVar

import cv2
import numpy as np

from engine.closing import Closing
from engine.errors import SaliencyError
from engine.runtime.live import lower_this_threads_priority
from engine.video.reader import VideoWriter

QUEUE_FRAMES: Final = 8
"""Pictures that may wait for the encoder (~0.27 s at 30 frames/s): room for a hiccup, not for falling behind. Each
holds what the live view showed (its views and the frame: ~4 MB at 720p)."""

RECORDER_NICENESS: Final = 5
"""The recorder's thread runs at this nice value: the live view first (0), the recording next, then the evidence
check (10) and the timeline's pass (15). When the CPU is short, the recording leaves frames out, not the live view."""

RECORDING_PRESET: Final = "superfast"
"""x264's preset for recordings (exports take "veryfast"): the encoder shares the CPU with the live view. Measured on
60 frames of box-720p.mp4 as the recording's 1148x644 grid, one thread, zerolatency, CRF 20, on the 2-core machine
under load (load average ~10): veryfast 8.3-9.4 ms a frame (616 KiB for 2 s), superfast 5.2-5.3 ms (798 KiB),
ultrafast 2.9-4.1 ms (1167 KiB): superfast takes half of veryfast's time for 30% more bytes."""

Item = TypeVar("Item")


class PlaybackTimes:
    """Each recorded picture's time in frame periods of the source, from what was shown and when (plain Python).

    A file's frame says where it is: the time moves on by as many frames as the source did (frames passed over
    included), unless that is clearly more than the wall clock allows (a jump forward while playing: then by the
    clock). A camera's frames, a loop back to the start or a jump back move on by the wall clock. Times always grow;
    `resume` after a pause goes on from the last frame, as if the pause was cut out.
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.slack = max(round(fps / 2), 1)  # periods the shown frames may run ahead of the clock (a late screen)
        self._last: tuple[int, int | None] | None = None  # (time, source frame) of the last picture
        self._origin = 0.0  # the wall clock's time of period 0 (moved on by pauses)
        self._resumed = False

    @property
    def last(self) -> int | None:
        """The time given last (None: none yet)."""
        return None if self._last is None else self._last[0]

    def resume(self) -> None:
        """Playback goes on after a pause: the next picture follows the last one."""
        self._resumed = True

    def time_of(self, index: int | None, at: float) -> int:
        """The time of a picture of source frame `index` (None: a camera's) shown at `at` (seconds, any clock)."""
        last = self._last
        if last is None:
            self._origin, time = at, 0
        else:
            last_time, last_index = last
            if self._resumed:
                self._origin = at - (last_time + 1) / self.fps
            by_clock = max(round((at - self._origin) * self.fps), last_time + 1)
            if index is not None and last_index is not None and index > last_index and not self._resumed:
                frames = last_time + index - last_index
                time = frames if frames <= by_clock + self.slack else by_clock
            else:
                time = last_time + 1 if self._resumed else by_clock
        self._resumed = False
        self._last = (time, index)
        return time


@dataclass(frozen=True)
class RecordingOutcome:
    path: Path
    written: int  # pictures in the file
    left_out: int  # pictures offered that the encoder could not take in time
    seconds: float  # the recording's length, by its frames' times
    error: str = ""  # why it stopped early ("" when it did not)


class Recorder(Closing, Generic[Item]):
    """Encodes what `offer` hands over, composed by `render` (in the recorder's thread), to `path` at `fps`.

        recorder = Recorder(path, fps, render)
        recorder.offer(item, frame_index, shown_at)   # never waits; False: left out (the encoder is behind)
        outcome = recorder.finish()                   # finishes the file (close() too)

    The video's size is that of the first picture; a later picture of another size (the window was resized) is
    scaled to it. An error while writing (a full disk) stops the recording: `error` says it in one line, and later
    offers are left out.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        render: Callable[[Item], np.ndarray],
        *,
        queue_frames: int = QUEUE_FRAMES,
        niceness: int = RECORDER_NICENESS,
    ) -> None:
        self.path = Path(path)
        self.fps = fps
        self.render = render
        self.times = PlaybackTimes(fps)
        self.written = 0
        self.left_out = 0
        self.error = ""
        self.last_time: int | None = None  # the time of the last picture written, in frame periods
        self._niceness = niceness
        self._queue: queue.Queue[tuple[Item, int] | None] = queue.Queue(maxsize=queue_frames)  # None: the end
        self._closed = False
        self._outcome: RecordingOutcome | None = None
        self._writer: VideoWriter | None = None
        self._thread = threading.Thread(target=self._run, name="live-recording", daemon=True)
        self._thread.start()

    # -- the live loop's side -------------------------------------------------------------------------------------
    def offer(self, item: Item, index: int | None, at: float) -> bool:
        """Record `item` (a picture of source frame `index`, shown at time `at`) unless the encoder is behind; never
        waits. False when it was left out."""
        if self._closed:
            return False
        time = self.times.time_of(index, at)
        if self.error:
            self.left_out += 1
            return False
        try:
            self._queue.put_nowait((item, time))
        except queue.Full:
            self.left_out += 1
            return False
        return True

    def close(self) -> None:
        self.finish()

    def finish(self) -> RecordingOutcome:
        """Finish the file: the pictures already offered are written, then the index (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)  # waits for room: the thread is taking pictures
            self._thread.join()
        if self._outcome is None:
            seconds = 0.0 if self.last_time is None else (self.last_time + 1) / self.fps
            self._outcome = RecordingOutcome(self.path, self.written, self.left_out, seconds, self.error)
        return self._outcome

    # -- the recorder's thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        lower_this_threads_priority(self._niceness)
        try:
            while (entry := self._queue.get()) is not None:
                item, time = entry
                self._write(self.render(item), time)
        except SaliencyError as error:  # e.g. the file cannot be written: said in one line
            self.error = str(error)
        except Exception as error:  # the live view goes on; the user hears why the recording stopped
            traceback.print_exc()
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._drain()
            self._finish()

    def _write(self, picture: np.ndarray, time: int) -> None:
        writer = self._writer
        if writer is None:
            height, width = picture.shape[:2]
            writer = self._writer = VideoWriter(
                self.path, self.fps, (width, height), preset=RECORDING_PRESET, fragments=True
            )
        if (picture.shape[1], picture.shape[0]) != writer.size:
            picture = cv2.resize(picture, writer.size, interpolation=cv2.INTER_AREA)
        writer.write(picture, time)
        self.written += 1
        self.last_time = time

    def _drain(self) -> None:
        """After an error: take what is still offered, so that `close` never waits on a full queue."""
        while not self._closed or not self._queue.empty():
            try:
                if self._queue.get(timeout=0.1) is None:
                    return
            except queue.Empty:
                continue

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as error:  # the fragments written so far stay playable
            self.error = self.error or f"the recording could not be finished: {error}"
