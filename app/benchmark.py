"""--benchmark-frames N: the app's own counter, headless. Counts explained frames shown on screen (the full
window with its views, painted offscreen) and evidence checks received, prints the rates, the time per stage and the
time from launch to the first picture and to the first explained frame, then quits."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QApplication

from app.explaining.results import FrameResult
from app.startup import StartupClock
from app.window import MainWindow
from engine.contract import Evidence

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


class HeadlessRun(QObject):
    """What both headless measurements share: the window's results in `_on_result`, a watchdog that fails the run
    when nothing is explained for too long, one line on failure, and closing the app at the end."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.exit_code = 1
        self.watchdog = Watchdog()
        window.result_shown.connect(self._on_result)
        window.worker.model_loading.connect(lambda _text: self.watchdog.model_loading())
        window.controller.model_ready.connect(lambda _info: self.watchdog.model_ready())
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._check_stall)
        self._timer.start(1000)

    def _on_result(self, result: FrameResult) -> None:
        raise NotImplementedError

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


class Benchmark(HeadlessRun):
    def __init__(self, window: MainWindow, frames: int, startup: StartupClock) -> None:
        super().__init__(window)
        self.frames = frames
        self.startup = startup  # launch to the first picture and the first explained frame, as painted
        self._started_at: float | None = None  # the first explained frame (warm-up and loading excluded)
        self._count = 0
        self._explained_before = 0
        self._timings: list[dict[str, float]] = []
        self._evidence_ms: list[float] = []
        self._evidence_count = 0
        self._shape = ""
        self._views = ""
        self._behind: list[tuple[float, float]] = []  # live sources: (seconds since the start, ms behind live)
        self._live_clock = ""
        window.worker.evidence_ready.connect(self._on_evidence)
        window.worker.source_opened.connect(lambda info: setattr(self, "_live_clock", info.live_clock))

    def _on_result(self, result: FrameResult) -> None:
        if result.explanation is None:
            return
        self.watchdog.frame_explained()
        if self._started_at is None:
            self._started_at = time.perf_counter()
            self._explained_before = self.window.worker.scheduler.explained_count
            self._shape = f"{result.frame.shape[1]}x{result.frame.shape[0]}"
            width, height = result.explanation.view_size
            self._views = f"{width}x{height}"
            return
        self._count += 1
        self._timings.append(dict(result.explanation.timings_ms))
        if result.live_at is not None:
            now = time.perf_counter()
            self._behind.append((now - self._started_at, (now - result.live_at) * 1000.0))
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
            f"  per shown frame {1000 * elapsed / self._count:.1f} ms; the engine's part {engine_ms:.1f} ms "
            f"(decoding and preparing the next frame, the evidence check and painting run beside it)"
        )
        if self._behind:
            print(f"  {live_edge_summary(self._behind)}")
            print(f"  (counted from {self._live_clock}, to the moment each result was handed to the views)")
        platform = QGuiApplication.platformName()
        print(f"  {self.startup.summary()}, painted on the {platform} platform")
        print(
            f"  frames dropped {window.worker.stats.dropped}, CPU cores {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        if state.recording:
            shown = window.recording.shown
            outcome = window.recording.stop()  # finished now, so that its numbers are final
            if outcome is not None:
                print(
                    f"  recording {outcome.path}: {outcome.written} of the {shown} frames shown while recording "
                    f"written, {outcome.left_out} left out (the encoder behind), {outcome.seconds:.1f} s of video"
                    f"{f'; stopped: {outcome.error}' if outcome.error else ''}"
                )
        sys.stdout.flush()
        self.exit_code = 0
        self._stop()


def live_edge_summary(behind: list[tuple[float, float]]) -> str:
    """'behind the live edge: median N ms, 95th M ms, worst W ms; per minute (median): ...' from (seconds since the
    start, ms behind) of each shown picture."""
    values = sorted(ms for _, ms in behind)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    minutes: dict[int, list[float]] = {}
    for seconds, ms in behind:
        minutes.setdefault(int(seconds // 60), []).append(ms)
    per_minute = ", ".join(f"{statistics.median(ms):.0f}" for _, ms in sorted(minutes.items()))
    return (
        f"behind the live edge: median {statistics.median(values):.0f} ms, 95th {p95:.0f} ms, worst {values[-1]:.0f} "
        f"ms; per minute (median, ms): {per_minute}"
    )


class SeekBenchmark(HeadlessRun):
    """--benchmark-seeks N: how fast the app answers a user who scrubs and changes settings, paused on a video.

    N actions, one after the other, each 150 to 400 ms after the previous answer (a person, not a script): a jump to
    a random frame through the slider (as a click on the track does), a drag step (1 to 8 frames back or forward of
    the frame on screen, as dragging the handle does), or another fill from the View controls. Each one is timed from
    the request (in the GUI thread) to the moment the answer is on screen: the frame asked for, or the frame explained
    with the new fill. Prints the median, the 95th percentile and the worst, per kind of action.
    Run it with another program busy on every core to see the app under load."""

    def __init__(self, window: MainWindow, actions: int, seed: int = 0) -> None:
        super().__init__(window)
        self.actions = actions
        self._random = random.Random(seed)
        self._latencies: dict[str, list[float]] = {"seek": [], "drag": [], "setting": []}
        self._pending: tuple[str, float, Callable[[FrameResult], bool]] | None = None
        self._started = False

    def _on_result(self, result: FrameResult) -> None:
        if result.explanation is None:
            return
        self.watchdog.frame_explained()
        if not self._started:
            self._started = True
            self.window.state.update(playing=False)
            QTimer.singleShot(1000, self._act)  # let the pause settle
            return
        if self._pending is not None and self._pending[2](result):
            kind, asked_at, _ = self._pending
            self._latencies[kind].append((time.perf_counter() - asked_at) * 1000)
            self._pending = None
            if sum(map(len, self._latencies.values())) >= self.actions:
                self._finish()
            else:
                QTimer.singleShot(self._random.randint(150, 400), self._act)

    def _act(self) -> None:
        state = self.window.state
        draw = self._random.random()
        if draw < 0.7 and state.frame_count:
            kind = "seek" if draw < 0.35 else "drag"
            index = self._target(kind, state.frame_index or 0, state.frame_count)
            self._pending = (kind, time.perf_counter(), lambda result: result.frame_index == index)
            self.window.player.slider.setValue(index)  # the slider's own signal: the path a click or drag takes
        else:
            fills = [fill for fill in ("blur", "grey", "black") if fill != state.fill]
            fill = self._random.choice(fills)
            self._pending = (
                "setting",
                time.perf_counter(),
                lambda result: result.explanation is not None and result.explanation.fill == fill,
            )
            self.window.view_controls.fill_combo.setCurrentIndex(self.window.view_controls.fill_combo.findData(fill))

    def _target(self, kind: str, here: int, count: int) -> int:
        """Another frame than `here`: anywhere (a jump), or a few frames away (a drag step)."""
        if kind == "seek":
            index = self._random.randrange(count)
        else:
            index = min(max(here + self._random.choice((-1, 1)) * self._random.randint(1, 8), 0), count - 1)
        return index if index != here else (here + 1) % count

    def _finish(self) -> None:
        print(f"benchmark: {self.actions} actions on {self.window.state.source_label}, paused, one at a time")
        for kind, values in self._latencies.items():
            if values:
                ordered = sorted(values)
                p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
                median = statistics.median(values)
                print(
                    f"  {kind:<8} {len(values):>3} times: request to picture median {median:.0f} ms, "
                    f"95th percentile {p95:.0f} ms, worst {ordered[-1]:.0f} ms"
                )
        print(f"  CPU cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()
        self.exit_code = 0
        self._stop()
