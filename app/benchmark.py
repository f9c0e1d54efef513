"""--benchmark-frames N: the app's own counter, headless. Counts explained frames shown on screen (the full
window with its views, painted offscreen) and evidence checks received, prints the rates, the time per stage and the
time from launch to the first picture and to the first explained frame, then quits."""

from __future__ import annotations

import os
import statistics
import sys
import time

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtWidgets import QApplication

from app.scheduler import FrameResult
from app.stats import process_age
from app.window import MainWindow
from engine.contract import Evidence

_STALL_SECONDS = 180.0  # no explained frame for this long: the model never loaded, give up


class Benchmark(QObject):
    def __init__(self, window: MainWindow, frames: int) -> None:
        super().__init__(window)
        self.window = window
        self.frames = frames
        self.exit_code = 1
        self._started_at: float | None = None  # the first explained frame (warm-up and loading excluded)
        self._count = 0
        self._first_picture_s: float | None = None  # process age when the first frame was on screen
        self._first_explained_s: float | None = None  # ... the first explained frame
        self._explained_before = 0
        self._timings: list[dict[str, float]] = []
        self._evidence_ms: list[float] = []
        self._evidence_count = 0
        self._shape = ""
        self._views = ""
        self._last_progress = time.perf_counter()
        window.result_shown.connect(self._on_result)
        window.worker.evidence_ready.connect(self._on_evidence)
        self._watchdog = QTimer(self)
        self._watchdog.timeout.connect(self._check_stall)
        self._watchdog.start(1000)

    def _on_result(self, result: FrameResult) -> None:
        if self._first_picture_s is None:
            self._first_picture_s = process_age()
        if result.explanation is None:
            return
        self._last_progress = time.perf_counter()
        if self._started_at is None:
            self._first_explained_s = process_age()
            self._started_at = self._last_progress
            self._explained_before = self.window.worker.scheduler.explained_count
            self._shape = f"{result.frame.shape[1]}x{result.frame.shape[0]}"
            width, height = result.explanation.view_size
            self._views = f"{width}x{height}"
            return
        self._count += 1
        self._timings.append(dict(result.explanation.timings_ms))
        if self._count >= self.frames:
            self._finish()

    def _on_evidence(self, evidence: Evidence) -> None:
        if self._started_at is not None:
            self._evidence_count += 1
            self._evidence_ms.append(evidence.check_ms)

    def _finish(self) -> None:
        assert self._started_at is not None
        elapsed = time.perf_counter() - self._started_at
        window = self.window
        model = window.controller.model
        state = window.state
        explained = window.worker.scheduler.explained_count - self._explained_before
        stages = sorted({key for timing in self._timings for key in timing})
        medians = ", ".join(
            f"{stage} {statistics.median(t[stage] for t in self._timings if stage in t):.1f}" for stage in stages
        )
        evidence_ms = f"{statistics.median(self._evidence_ms):.1f} ms each" if self._evidence_ms else "none"
        print(
            f"benchmark: {self._count} explained frames shown in {elapsed:.2f} s = "
            f"{self._count / elapsed:.1f} frames/s shown; {explained / elapsed:.1f} frames/s explained; "
            f"evidence updated {self._evidence_count / elapsed:.1f} times/s ({evidence_ms})"
        )
        print(
            f"  source {state.source_label} ({self._shape}), layout {state.layout} (each view made at {self._views}), "
            f"fill {state.fill}, evidence {'on' if state.evidence else 'off'}"
        )
        if model is not None:
            print(f"  model {model.description}, backend {model.backend} ({model.backend_reason})")
        print(f"  engine time per frame, median ms: {medians}")
        engine_ms = statistics.median(t.get("total", 0.0) for t in self._timings)
        print(
            f"  per shown frame {1000 * elapsed / self._count:.1f} ms; the engine's part {engine_ms:.1f} ms (decoding and "
            f"preparing the next frame, the evidence check and painting run beside it)"
        )
        print(
            f"  launch to first picture {_seconds(self._first_picture_s)}, to first explained frame "
            f"{_seconds(self._first_explained_s)} (from the start of the process)"
        )
        print(
            f"  frames dropped {window.worker.stats.dropped}, CPU cores {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.1f}"
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


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
