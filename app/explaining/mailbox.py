"""Between the GUI thread and the pipeline's thread: requests that collapse, and a one-slot box for results.

Plain Python (threading only), so the scheduling is tested headless. Requests of each kind keep only their newest
value: a fast scrub never queues up stale seeks, ten clicks on the fill menu are one re-explain. Results go through
one slot: when the GUI is slower than the pipeline, the older result is replaced (and counted as dropped) instead
of piling up in the event queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from app.playback.sources import FrameSource
from app.state import AppState
from engine.contract import AUTO


@dataclass(frozen=True)
class CameraOrDemo:
    """A camera (app/source_specs.py) when it opens, else the bundled demo clip: the start without --source, on
    the camera remembered from the last session (AUTO_SOURCE: on camera 0)."""

    camera: str = "camera:0"


# a camera (index or spec), a file, a stream URL, AUTO_SOURCE, CameraOrDemo, or a source open
SourceSpec = str | int | Path | FrameSource | CameraOrDemo


@dataclass(frozen=True)
class ExplainParams:
    target: int = AUTO  # a class index or AUTO (engine.contract)
    fill: str = "blur"
    opacity: float = 0.5
    evidence: bool = True
    # (x0, y0, x1, y1) of the frame explained alone (engine.runtime.framing)
    region: tuple[int, int, int, int] | None = None
    aspect: str = "stretch"  # a picture that is not square: "pad" to a square or "stretch" (ASPECTS)
    steady_class: bool = True  # "auto" holds its class over playback frames (engine.runtime.temporal.SteadyClass)
    smooth_mask: bool = True  # the mask is averaged over playback frames (engine.runtime.temporal.MaskSmoother)

    @classmethod
    def of(cls, state: AppState) -> ExplainParams:
        return cls(
            state.target,
            state.fill,
            state.opacity,
            state.evidence,
            state.region,
            state.aspect,
            state.steady_class,
            state.smooth_mask,
        )


@dataclass(frozen=True)
class ModelSpec:
    path: str | None = None  # None: the bundled default model
    backend: str = "auto"
    # when this model fails to load, the controller loads the bundled one instead (it was remembered from the last
    # session): the player waits for that one
    fallback: bool = False

    @classmethod
    def of(cls, state: AppState) -> ModelSpec:
        """The model `state` asks for (the controller's requests and main's early load, by this one rule)."""
        remembered = state.model_path is not None and state.is_restored("model_path")
        return cls(state.model_path, state.backend, fallback=remembered)


@dataclass(frozen=True)
class Requests:
    """What the GUI asked for since the pipeline last looked; each kind keeps only its newest value.

    A kind that must accumulate instead (steps counted from the last requested frame) gets its own merge in
    `merged`; everything else is replaced.
    """

    source: SourceSpec | None = None
    model: ModelSpec | None = None
    params: ExplainParams | None = None
    playing: bool | None = None
    seek: int | None = None
    view_size: tuple[int, int] | None = None  # (width, height) the views are shown at: they are made at that size
    model_built: bool | None = None  # a model's load has ended (app/explaining/loading.py): take it
    stop: bool = False

    def merged(self, **changes: Any) -> Requests:
        return replace(self, **changes)

    def any(self) -> bool:
        return self.stop or any(getattr(self, f.name) is not None for f in fields(self) if f.name != "stop")


class Clock(Protocol):
    """Time for the scheduler: the real one, or a fake in tests (which moves on by itself instead of sleeping)."""

    def now(self) -> float: ...

    def wait(self, condition: threading.Condition, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Wait (holding `condition`) until `ready()` or `timeout` seconds pass (None: no limit); ready()'s value."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.perf_counter()

    def wait(self, condition: threading.Condition, ready: Callable[[], bool], timeout: float | None) -> bool:
        return condition.wait_for(ready, timeout)


class RequestBox:
    """Requests from any thread, taken in one piece by the pipeline's thread."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.condition = threading.Condition()  # re-entrant: a fake clock may post while a wait holds it
        self._requests = Requests()

    def post(self, **changes: Any) -> None:
        with self.condition:
            self._requests = self._requests.merged(**changes)
            self.condition.notify_all()

    def pending(self) -> bool:
        with self.condition:
            return self._requests.any()

    def take(self, busy: Callable[[], bool]) -> Requests:
        """The requests so far; waits for one unless `busy()` (playback has a next frame to show)."""
        with self.condition:
            self.clock.wait(self.condition, lambda: self._requests.any() or busy(), None)
            requests, self._requests = self._requests, Requests()
            return requests

    def wait_for_request(self, seconds: float) -> bool:
        """Sleep up to `seconds`, woken by a request; True when a request came (or was there)."""
        with self.condition:  # a lambda: `post` replaces the Requests object, a bound method would keep the old one
            return self.clock.wait(self.condition, lambda: self._requests.any(), max(seconds, 0.0))


Item = TypeVar("Item")


class Slot(Generic[Item]):
    """One item handed from one thread to another; a newer item replaces one not taken yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Item | None = None

    def put(self, item: Item) -> bool:
        """True when an item not taken yet was replaced."""
        with self._lock:
            replaced = self._item is not None
            self._item = item
            return replaced

    def take(self) -> Item | None:
        with self._lock:
            item, self._item = self._item, None
            return item
