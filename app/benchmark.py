"""--benchmark-frames N: the app's own counter, headless. Counts explained frames shown on screen (the full
window with its views, painted offscreen), prints the rate and the engine's time per stage, then quits."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtWidgets import QApplication

from app.scheduler import FrameResult
from app.window import MainWindow

STALL_SECONDS = 180.0  # a loaded model and no explained frame for this long: something is stuck, give up
# Loading is not a stall: a first run on a GPU exports the model and builds two TensorRT plans (minutes). It still
# has a limit, so that a load that never ends does not hold a headless run forever.
LOAD_SECONDS = 1800.0


class Watchdog:
    """When to give up on a benchmark (plain Python, so the rule is tested without waiting): more than
    `stall_seconds` without an explained frame once a model is ready, or more than `load_seconds` loading one."""

    def __init__(
        self,
        stall_seconds: float = STALL_SECONDS,
        load_seconds: float = LOAD_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stall_seconds = stall_seconds
        self.load_seconds = load_seconds
        self.clock = clock
        self.loading = False
        self._since = clock()  # the last progress: the start, a model ready or loading, an explained frame

    def model_loading(self) -> None:
        self.loading = True
        self._since = self.clock()

    def model_ready(self) -> None:
        self.loading = False
        self._since = self.clock()

    def frame_explained(self) -> None:
        self._since = self.clock()

    def verdict(self) -> str | None:
        """None while all is well, else why the benchmark should stop."""
        waited = self.clock() - self._since
        if self.loading:
            return f"the model did not load in {self.load_seconds:.0f} s" if waited > self.load_seconds else None
        return f"no explained frame for {self.stall_seconds:.0f} s" if waited > self.stall_seconds else None


class Benchmark(QObject):
    def __init__(self, window: MainWindow, frames: int) -> None:
        super().__init__(window)
        self.window = window
        self.frames = frames
        self.exit_code = 1
        self._started_at: float | None = None  # the first explained frame (warm-up and loading excluded)
        self._count = 0
        self._timings: list[dict[str, float]] = []
        self._shape = ""
        self.watchdog = Watchdog()
        window.result_shown.connect(self._on_result)
        window.worker.model_loading.connect(lambda _text: self.watchdog.model_loading())
        window.controller.model_ready.connect(lambda _info: self.watchdog.model_ready())
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._check_stall)
        self._timer.start(1000)

    def _on_result(self, result: FrameResult) -> None:
        if result.explanation is None:
            return
        self.watchdog.frame_explained()
        if self._started_at is None:
            self._started_at = time.perf_counter()
            self._shape = f"{result.frame.shape[1]}x{result.frame.shape[0]}"
            return
        self._count += 1
        self._timings.append(dict(result.explanation.timings_ms))
        if self._count >= self.frames:
            self._finish()

    def _finish(self) -> None:
        assert self._started_at is not None
        elapsed = time.perf_counter() - self._started_at
        window = self.window
        model = window.controller.model
        state = window.state
        stages = sorted({key for timing in self._timings for key in timing})
        medians = ", ".join(
            f"{stage} {statistics.median(t[stage] for t in self._timings if stage in t):.1f}" for stage in stages
        )
        print(
            f"benchmark: {self._count} explained frames shown in {elapsed:.2f} s = "
            f"{self._count / elapsed:.1f} frames/s shown"
        )
        print(
            f"  source {state.source_label} ({self._shape}), views: {state.layout}, fill {state.fill}, "
            f"evidence {'on' if state.evidence else 'off'}"
        )
        if model is not None:
            print(f"  model {model.description}, backend {model.backend} ({model.backend_reason})")
        print(f"  engine time per frame, median ms: {medians}")
        engine_ms = statistics.median(t.get("total", 0.0) for t in self._timings)
        print(
            f"  per shown frame {1000 * elapsed / self._count:.1f} ms = engine {engine_ms:.1f} ms + the rest "
            f"(decoding, handing over, painting; other programs on this CPU)"
        )
        print(
            f"  pipeline explained {window.worker.stats.explained_fps:.1f} frames/s (last 2 s), "
            f"frames dropped {window.worker.stats.dropped}, CPU cores {os.cpu_count()}"
        )
        sys.stdout.flush()
        self.exit_code = 0
        self._stop()

    def fail(self, text: str) -> None:
        print(f"benchmark failed: {text}", file=sys.stderr)
        self.exit_code = 1
        self._stop()

    def _check_stall(self) -> None:
        verdict = self.watchdog.verdict()
        if verdict is not None:
            self.fail(verdict)

    def _stop(self) -> None:
        self._timer.stop()
        self.window.result_shown.disconnect(self._on_result)
        self.window.close()
        application = QApplication.instance()
        if application is not None:
            application.quit()
