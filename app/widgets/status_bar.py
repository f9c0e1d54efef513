"""StatusBar: model and black box, backend, fps (shown / explained), latency per frame, frames dropped; and
messages (errors stay longer and in red)."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QStatusBar, QWidget

from app.worker import WorkerStats


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel("model: loading...")
        self.backend_label = QLabel("backend: -")
        self.fps_label = QLabel("fps: -")
        self.latency_label = QLabel("latency: -")
        self.dropped_label = QLabel("dropped: 0")
        self.fps_label.setToolTip("frames per second shown on screen / explained by the pipeline")
        self.latency_label.setToolTip("from reading the frame to showing it (the engine's own time in brackets)")
        self.dropped_label.setToolTip("frames never shown: late in real-time playback, or replaced by newer ones")
        for label in (self.model_label, self.backend_label, self.fps_label, self.latency_label, self.dropped_label):
            self.addPermanentWidget(label)
        self.last_message = ""

    def show_info(self, text: str, timeout_ms: int = 6000) -> None:
        self.setStyleSheet("")
        self.last_message = text
        self.showMessage(text, timeout_ms)

    def show_error(self, text: str) -> None:
        self.setStyleSheet("QStatusBar { color: #ff6b6b; }")
        self.last_message = text
        self.showMessage(text, 20000)

    def show_model(self, description: str, backend: str, reason: str) -> None:
        self.model_label.setText(f"model: {description}")
        self.backend_label.setText(f"backend: {backend}")
        self.backend_label.setToolTip(reason)

    def show_no_model(self, short_reason: str) -> None:
        self.model_label.setText(f"model: none ({short_reason})")
        self.backend_label.setText("backend: -")

    def show_rates(self, shown_fps: float, stats: WorkerStats, latency_ms: float | None) -> None:
        self.fps_label.setText(f"fps: {shown_fps:.1f} shown / {stats.explained_fps:.1f} explained")
        if latency_ms is None:
            self.latency_label.setText("latency: -")
        else:
            self.latency_label.setText(f"latency: {latency_ms:.0f} ms (engine {stats.model_ms:.0f} ms)")
        self.dropped_label.setText(f"dropped: {stats.dropped}")
