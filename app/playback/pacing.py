"""Real-time playback as plain Python: which frame of a file is due now, and the count of frames never shown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """What to do before reading the next frame of a file."""

    behind: bool  # the frame due now lies past the next one: pass over `skip` frames, then show at once
    skip: int = 0
    wait: float = 0.0  # not behind: seconds until the next frame is due (wait for it, unless a request comes)


class PlaybackClock:
    """Frames are due at the file's frame rate, counted from where playback (re)started; `restart()` after a seek,
    a pause or a jump back to the start, so that the time spent meanwhile is not made up by skipping."""

    def __init__(self) -> None:
        self._origin: tuple[float, int] | None = None  # (time, frame index) where playback started

    def restart(self) -> None:
        self._origin = None

    def pace(self, now: float, next_index: int, fps: float, frame_count: int | None) -> Pace:
        if self._origin is None:
            self._origin = (now, next_index)
        start_time, start_index = self._origin
        due = start_index + int((now - start_time) * fps)
        if due > next_index:
            late = due - next_index
            if frame_count is not None:  # never skip past the last frame: it is shown, however late
                late = min(late, max(frame_count - 1 - next_index, 0))
            return Pace(behind=True, skip=late)
        return Pace(behind=False, wait=start_time + (next_index - start_index) / fps - now)


@dataclass
class Drops:
    """Frames never shown, by cause (the status bar shows the total)."""

    late: int = 0  # passed over in real-time playback: the pipeline was behind the file's clock
    unshown: int = 0  # explained, then replaced by a newer result before the GUI took it
    closed: int = 0  # thrown away by sources closed since (a camera that captured faster than we read)

    def total(self, open_source_dropped: int = 0) -> int:
        return self.late + self.unshown + self.closed + open_source_dropped
