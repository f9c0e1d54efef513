"""The app's memory budget, in one place, and the count of the decoded frames kept for seeking against it.

The budget: the app stays under RESIDENT_GOAL_BYTES of resident memory on a 1280x720 clip, looped for ten minutes and
scrubbed (measured in docs/ENGINE.md, "Memory"). What varies with the clip is the frames kept for seeking; the rest
(Python, Qt, the window, the live model and, while it runs, the timeline's) is about the same for any clip. So all
frames kept for seeking share FRAMES_BYTES, counted here (`FRAME_MEMORY`):
- the seeker's decoded frames of a file whose keyframes are far apart (app/playback/file_seeker.py: all of box.mp4
  in 210 MB), kept once the file is open and its model ready, as long as they fit;
- the read-ahead's frames shown lately and those behind a paused frame (app/playback/read_ahead.py), at most
  RECENT_BYTES of the budget: when the budget is full it lets its oldest go (it always keeps a few).

Besides, the C allocator is told to keep at most MALLOC_ARENAS arenas (`cap_malloc_arenas`, glibc's M_ARENA_MAX, the
MALLOC_ARENA_MAX variable's setting): by default it makes up to eight per core for the app's ~15 threads, and freed
frames left their arenas fragmented. Measured on the 720p clip under Xvfb: 667-698 MB looping and 741 MB after 60
jumps with two arenas, against 720-776 and 814 MB without the cap (docs/ENGINE.md, "Memory").

Plain Python (a lock and two numbers), tested headless.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

RESIDENT_GOAL_BYTES = 800 * 10**6  # the app's resident memory (VmRSS) on a 720p clip: the goal the budget is set for
# What the app takes besides the frames kept, measured on the 720p clip: ~520 MB (Python, Qt and the window ~190 MB,
# the live model ~150 MB, the timeline's model ~80 MB while its pass runs, decoders, arenas), so the frames get:
FRAMES_BYTES = 256 * 2**20
RECENT_BYTES = 48 * 2**20  # of which the read-ahead's recent frames at most: ~14 frames of 720p, ~40 of 640x480


class FrameMemory:
    """Bytes of decoded frames kept, against a limit, by everyone who keeps frames (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def take(self, size: int, *, force: bool = False) -> bool:
        """Count `size` more bytes when they fit under the limit (or anyway, `force`: the few frames a reader cannot
        do without); False when they do not fit (nothing counted)."""
        with self._lock:
            if not force and self._used + size > self.limit:
                return False
            self._used += size
            return True

    def give(self, size: int) -> None:
        """`size` bytes let go."""
        with self._lock:
            self._used = max(self._used - size, 0)


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Ask glibc's allocator to keep at most `arenas` arenas (call it before threads start); True when it took it.
    Elsewhere (another C library, another system) nothing happens."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, arenas))


FRAME_MEMORY = FrameMemory(FRAMES_BYTES)  # the app's one count (tests give the seeker and the read-ahead their own)
