"""ModelLoad: one Explainer being built in a thread of its own (plain Python threads, tested without Qt).

Building an Explainer is the one slow step (reading and checking the graphs, ONNX Runtime's session set-up and a
warm-up; on a GPU an export and TensorRT plans). Built in its own thread:
- the pipeline's thread goes on meanwhile: a file shows its first frame and waits on it, a camera shows live frames,
  seeks and pauses are answered (app/explaining/scheduler.py);
- `main` starts the load of the model the window will ask for before it imports the window's modules, so that the
  two overlap (ONNX Runtime sets its sessions up in C++ without holding the GIL: measured, a Python loop in another
  thread ran at full speed meanwhile).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.explaining.mailbox import ExplainParams, ModelSpec

if TYPE_CHECKING:
    from engine.api import Explainer

Build = Callable[[ModelSpec, ExplainParams], "Explainer"]


def build_explainer(spec: ModelSpec, params: ExplainParams) -> Explainer:
    from engine.api import Explainer  # the engine loads here, in the loading thread (torch too, if needed)

    return Explainer(spec.path, spec.backend, fill=params.fill, opacity=params.opacity, evidence=params.evidence)


class ModelLoad:
    """The Explainer for `spec`, built in a thread (or at once, `threaded=False`, for tests that step the scheduler).

    load = ModelLoad(spec, params)
    load.on_done(wake_up)      # called once it is built or has failed (from the loading thread)
    explainer = load.take()    # once done: the Explainer, or the error the build raised
    load.abandon()             # not wanted any more: closed when it comes (a build cannot be interrupted)
    """

    def __init__(
        self, spec: ModelSpec, params: ExplainParams, build: Build = build_explainer, *, threaded: bool = True
    ) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._done = threading.Event()  # built or failed: `take` answers
        self._settled = threading.Event()  # ... and the listeners have been called
        self._explainer: Explainer | None = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._listeners: list[Callable[[], object]] = []
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, args=(build, params), name="model-load", daemon=True)
            self._thread.start()
        else:
            self._run(build, params)

    @property
    def done(self) -> bool:
        """The build has ended: `take` answers (the listeners may still be on their way)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the build has ended and the listeners have been called (True), or `timeout` seconds."""
        return self._settled.wait(timeout)

    def on_done(self, listener: Callable[[], object]) -> None:
        """Call `listener()` when the build ends: at once if it has (in this thread), else from the loading thread."""
        with self._lock:
            if not self._done.is_set():
                self._listeners.append(listener)
                return
        listener()

    def take(self) -> Explainer:
        """The Explainer (the caller owns it from now on), or the build's error raised here. Only once done."""
        with self._lock:
            if not self._done.is_set():
                raise RuntimeError("the model is still loading")
            explainer, self._explainer = self._explainer, None
            if self._error is not None:
                raise self._error
        if explainer is None:
            raise RuntimeError("the model was taken already")
        return explainer

    def abandon(self, wait: bool = False) -> None:
        """Not wanted any more: the Explainer is closed, now or as soon as it is built. `wait`: until then (closing
        the app: a build that goes on in a thread while the interpreter shuts down could crash it)."""
        with self._lock:
            self._abandoned = True
            explainer, self._explainer = self._explainer, None
        if explainer is not None:
            explainer.close()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self, build: Build, params: ExplainParams) -> None:
        explainer: Explainer | None = None
        error: BaseException | None = None
        try:
            explainer = build(self.spec, params)
        except Exception as raised:  # handed to whoever takes it, raised there
            error = raised
        with self._lock:
            abandoned = self._abandoned
            if not abandoned:
                self._explainer, self._error = explainer, error
            self._done.set()
            listeners, self._listeners = self._listeners, []
        if abandoned and explainer is not None:
            explainer.close()
        for listener in listeners:
            listener()
        self._settled.set()
