"""--benchmark-frames N: the app's own counter, headless. Counts explained frames shown on screen (the full
window with its views, painted offscreen), prints the rate and the engine's time per stage, then quits."""

from __future__ import annotations

import os
import statistics
import sys
import time

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtWidgets import QApplication

from app.scheduler import FrameResult
from app.window import MainWindow

_STALL_SECONDS = 180.0  # no explained frame for this long: the model never loaded, give up


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
        self._last_progress = time.perf_counter()
        window.result_shown.connect(self._on_result)
        self._watchdog = QTimer(self)
        self._watchdog.timeout.connect(self._check_stall)
        self._watchdog.start(1000)

    def _on_result(self, result: FrameResult) -> None:
        if result.explanation is None:
            return
        self._last_progress = time.perf_counter()
        if self._started_at is None:
            self._started_at = self._last_progress
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
        if time.perf_counter() - self._last_progress > _STALL_SECONDS:
            self.fail(f"no explained frame for {_STALL_SECONDS:.0f} s")

    def _stop(self) -> None:
        self._watchdog.stop()
        self.window.result_shown.disconnect(self._on_result)
        self.window.close()
        application = QApplication.instance()
        if application is not None:
            application.quit()
