"""The live pipeline's two helpers, plain Python threads (no torch, no Qt): work done ahead, and the evidence stream.

On two CPU cores the mask is the live product: the model runs on one core while the other decodes and prepares the
next frame (`run_ahead`) and, about ten times a second, checks the evidence of the newest mask (`EvidenceStream`:
the black box on the preserved and destroyed views). Evidence never holds a mask back: its thread takes whatever
frame is newest when it is free, runs at a lower scheduling priority, and says which frame its numbers belong to.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from engine.closing import Closing
from engine.contract import Evidence, Explanation

Item = TypeVar("Item")
Done = TypeVar("Done")

# A check starts at most every 80 ms, and only once a newer frame is offered after that: measured 9.5-9.7 updates/s
# with 100 ms (box-720p.mp4, 2 cores), so 80 ms to keep at least 10 per second (the goal: enough to read), at ~30 ms
# of one core each on a CPU.
EVIDENCE_INTERVAL_S = 0.08


def lower_this_threads_priority(niceness: int = 10) -> None:
    """Linux schedules threads as tasks: a nice value for the calling thread alone. Elsewhere, nothing happens."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


def run_ahead(items: Iterator[Item], work: Callable[[Item], Done], depth: int = 2) -> Iterator[Done]:
    """`work(item)` for each item, done in a background thread up to `depth` items ahead of the consumer (decoding
    and preparing the next frames while the model runs on this one). OpenCV and the runtimes release the GIL, so
    the two threads really run at once. Stopping early (break, an error) ends the thread."""
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                done = work(item)
                while not stop.is_set():
                    try:
                        results.put((True, done), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            results.put((False, None))
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, raised there)
            results.put((False, error))

    thread = threading.Thread(target=produce, name="run-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, value = results.get()
            if not more:
                if isinstance(value, BaseException):
                    raise value
                return
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


class _Offer:
    def __init__(self, explanation: Explanation, frame_index: int | None, frame_time: float, tag: object) -> None:
        self.explanation = explanation
        self.frame_index = frame_index
        self.frame_time = frame_time
        self.tag = tag


class EvidenceStream(Closing):
    """The evidence check of the newest explained frame, at most once per `interval` seconds, in its own thread.

        stream = EvidenceStream(explainer.evidence, on_ready=callback)
        stream.offer(explanation, frame_index=12, frame_time=t)   # never blocks; a newer offer replaces an older one
        stream.latest()                                           # the newest Evidence computed, or None

    `compute(explanation)` returns the probabilities ("frame", "preserved", "destroyed"); it runs in the stream's
    thread, at the same time as the caller's next masks. `on_ready(evidence)` is called from that thread.
    """

    def __init__(
        self,
        compute: Callable[[Explanation], dict[str, float]],
        *,
        interval: float = EVIDENCE_INTERVAL_S,
        on_ready: Callable[[Evidence], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.compute = compute
        self.interval = interval
        self.on_ready = on_ready
        self.on_error = on_error
        self.computed = 0  # evidence checks done so far
        self._condition = threading.Condition()
        self._pending: _Offer | None = None
        self._latest: Evidence | None = None
        self._last_start = -float("inf")
        self._epoch = 0  # bumped by clear(): a check started before it is not published
        self._closed = False
        self._busy = False  # a check is running
        self._thread = threading.Thread(target=self._run, name="evidence", daemon=True)
        self._thread.start()

    def offer(
        self, explanation: Explanation, *, frame_index: int | None, frame_time: float, tag: object = None
    ) -> None:
        with self._condition:
            self._pending = _Offer(explanation, frame_index, frame_time, tag)
            self._condition.notify_all()

    def latest(self) -> Evidence | None:
        with self._condition:
            return self._latest

    def clear(self) -> None:
        """Forget what was offered and computed (another source, another model): nothing old is published."""
        with self._condition:
            self._pending = None
            self._latest = None
            self._epoch += 1

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending (tests, benchmarks); True when idle."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def _run(self) -> None:
        lower_this_threads_priority()
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                wait = self._last_start + self.interval - time.perf_counter()
                if wait > 0:  # too soon after the last check: let newer frames replace the offer meanwhile
                    self._condition.wait_for(lambda: self._closed, timeout=wait)
                    continue
                offer, self._pending = self._pending, None
                epoch = self._epoch
                self._last_start = time.perf_counter()
                self._busy = True
            assert offer is not None
            try:
                probabilities = self.compute(offer.explanation)
            except BaseException as error:  # noqa: BLE001 (reported; the stream goes on)
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
                if self.on_error is not None:
                    self.on_error(error)
                continue
            done_at = time.perf_counter()
            evidence = Evidence(
                frame_index=offer.frame_index,
                target=offer.explanation.target,
                probabilities=probabilities,
                frame_time=offer.frame_time,
                done_at=done_at,
                check_ms=(done_at - self._last_start) * 1000,
                tag=offer.tag,
            )
            with self._condition:
                self._busy = False
                published = epoch == self._epoch and not self._closed
                if published:
                    self._latest = evidence
                    self.computed += 1
                self._condition.notify_all()
            if published and self.on_ready is not None:
                self.on_ready(evidence)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._pending = None
            self._condition.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
