"""Counters for the status bar: rates over a sliding window (frames per second), no Qt."""

from __future__ import annotations

import os
import statistics
import time
from collections import deque


class RateMeter:
    """Events per second over the last `window` seconds (the status bar's fps figures)."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self._previous: float | None = None
        self._last: float | None = None
        self.total = 0

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self._times.append(now)
        self._previous, self._last = self._last, now
        self.total += 1
        self._forget_before(now - self.window)

    def rate(self, now: float | None = None) -> float:
        """Events per second over the window; slower than one per window: from the last two events, while the
        last one is recent (a 0.5 fps pipeline shows 0.5, not 0)."""
        now = time.perf_counter() if now is None else now
        self._forget_before(now - self.window)
        if len(self._times) >= 2:
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0
        if self._previous is not None and self._last is not None and now - self._last < 5 * self.window:
            return 1.0 / max(self._last - self._previous, 1e-9)
        return 0.0

    def reset(self) -> None:
        self._times.clear()
        self._previous = self._last = None
        self.total = 0

    def _forget_before(self, start: float) -> None:
        while self._times and self._times[0] < start:
            self._times.popleft()


def process_age() -> float:
    """Seconds since this process started (Linux: from /proc, 10 ms resolution; elsewhere: since this module was
    imported, which misses the interpreter's own start-up)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            fields = stat.read().rsplit(")", 1)[1].split()
            started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, after pid and (comm)
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


class LatencyMeter:
    """From reading a frame to its explanation, counted only for frames shown while playing: a paused frame that is
    explained again (a setting changed) keeps the time it was read, and its "latency" would grow while paused."""

    def __init__(self) -> None:
        self.ms: float | None = None  # the last one measured while playing

    def record(self, captured_at: float, done_at: float, playing: bool) -> None:
        if playing:
            self.ms = (done_at - captured_at) * 1000.0


class LiveEdgeMeter:
    """How far behind the live edge the pictures shown are: the median of the last `window` shown (the status bar's
    "behind live"), and every one of them with the time it was shown (the benchmark's percentiles per minute)."""

    # no new picture for this long (a stream or camera lost, or stalled): the picture on screen is as old as it is
    STALE_S = 1.0

    def __init__(self, window: int = 15) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._newest_live_at: float | None = None

    def record(self, live_at: float, shown_at: float) -> float:
        behind_ms = max(shown_at - live_at, 0.0) * 1000.0
        self._recent.append(behind_ms)
        self._newest_live_at = live_at
        return behind_ms

    def median_ms(self) -> float | None:
        return statistics.median(self._recent) if self._recent else None

    def behind_now_ms(self, now: float) -> float | None:
        """How far behind now the picture on screen is: the median of the last shown while pictures come (a
        frame's delay jitters), the age of the last one once none came for STALE_S (the median of pictures that
        stopped coming would claim the screen is live while it shows a picture seconds old)."""
        if self._newest_live_at is None:
            return None
        age_ms = max(now - self._newest_live_at, 0.0) * 1000.0
        median = self.median_ms()
        return age_ms if median is None or age_ms > max(median, self.STALE_S * 1000.0) else median

    def reset(self) -> None:
        self._recent.clear()
        self._newest_live_at = None
