"""What every source hands out (`Frame`) and what every source is (`FrameSource`); and, for live sources, the
pause between tries to reconnect (`Backoff`). No Qt, no OpenCV: the sources' common ground."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.errors import VideoError
from engine.video.reader import FALLBACK_FPS

RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # between tries to reconnect; the last one repeats


@dataclass
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    index: int | None  # position in the file; None for live cameras
    captured_at: float  # time.perf_counter() when it was read
    # the engine's preparation of the image, when it was made ahead (app/playback/read_ahead.py)
    prepared: object = None
    prepared_with: int = -1  # which preparation (ReadAhead.prepare_generation) made it
    # live sources: when the picture was live at its origin, on time.perf_counter()'s clock (the source's
    # `live_clock` says which clock it comes from); None for files and images
    live_at: float | None = None


class FrameSource:
    """Base of all sources. `read()` gives the next frame (None at the end of a file; for a live source: no new
    picture yet, the one on screen stays)."""

    kind = ""
    label = ""
    fps = FALLBACK_FPS
    frame_count: int | None = None  # None: live, no end
    seekable = False
    dropped = 0  # frames the source threw away because nobody asked for them in time
    live_clock = ""  # live sources: what Frame.live_at is measured from (the status bar's tooltip says it)

    @property
    def live(self) -> bool:
        return self.frame_count is None

    @property
    def position(self) -> int | None:
        """The index of the frame the next read() returns (None for live sources)."""
        return None

    def read(self) -> Frame | None:
        raise NotImplementedError

    def seek(self, index: int) -> Frame:
        raise VideoError(f"{self.label} is a live source; it cannot jump to a frame")

    def skip(self, count: int) -> None:
        """Pass over `count` frames without returning them (real-time playback that fell behind)."""
        for _ in range(count):
            if self.read() is None:
                return

    def take_notice(self) -> str | None:
        """Something to tell the user about the source, once (None: nothing new)."""
        return None

    def close(self) -> None:
        pass


class Backoff:
    """The waits between tries to reconnect: 0.5, 1, 2, 4, then 5 s each time."""

    def __init__(self, delays: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self._delays = delays
        self.tries = 0

    def next_delay(self) -> float:
        delay = self._delays[min(self.tries, len(self._delays) - 1)]
        self.tries += 1
        return delay

    def reset(self) -> None:
        self.tries = 0


class Notices:
    """Lines for the user from a source's own thread, taken one at a time by the pipeline's (newest 8 kept)."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=8)

    def say(self, line: str) -> None:
        self._lines.append(line)  # (deque's append and popleft are atomic: no lock needed)

    def take(self) -> str | None:
        try:
            return self._lines.popleft()
        except IndexError:
            return None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._lines))
