"""StatusBar: model and black box, backend, fps (shown / explained), latency per frame, frames dropped; and
messages (errors stay longer and in red; notes stay long enough to be read: passing messages wait behind them)."""

from __future__ import annotations

import time
from collections import deque

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QLabel, QStatusBar, QWidget

from app.explaining.results import WorkerStats

_ERROR_PRECEDENCE_S = 8.0
NOTE_HOLD_S = 8.0  # a note (e.g. "No webcam...; playing the demo clip") is not covered by passing messages sooner


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel("model: loading...")
        self.backend_label = QLabel("backend: -")
        self.fps_label = QLabel("fps: -")
        self.latency_label = QLabel("latency: -")
        self.dropped_label = QLabel("dropped: 0")
        self.recording_label = QLabel("")
        self.recording_label.setStyleSheet("color: #d03030; font-weight: bold;")
        self.recording_label.setToolTip("recording the live view: its length so far (Ctrl+R stops)")
        self.fps_label.setToolTip("frames per second shown on screen / explained by the pipeline")
        self.latency_label.setToolTip("from reading the frame to showing it (the engine's own time in brackets)")
        self.dropped_label.setToolTip("frames never shown: late in real-time playback, or replaced by newer ones")
        for label in (
            self.recording_label,
            self.model_label,
            self.backend_label,
            self.fps_label,
            self.latency_label,
            self.dropped_label,
        ):
            self.addPermanentWidget(label)
        self.recording_label.setVisible(False)
        self.last_message = ""
        self._error_shown_at = -1e9
        self._note_until = -1e9
        self._waiting: tuple[str, int] | None = None  # the newest passing message that came while a note was read
        self._after_note = QTimer(self)
        self._after_note.setSingleShot(True)
        self._after_note.timeout.connect(self._show_waiting)
        self.recent: deque[str] = deque(maxlen=12)

    def show_info(self, text: str, timeout_ms: int = 6000) -> None:
        """A passing message; it does not cover an error shown in the last few seconds, and waits while a note is
        being read (only the newest waits)."""
        self._remember(text)
        if time.monotonic() - self._error_shown_at < _ERROR_PRECEDENCE_S:
            return
        remaining = self._note_until - time.monotonic()
        if remaining > 0:
            self._waiting = (text, timeout_ms)
            self._after_note.start(int(remaining * 1000) + 1)
            return
        self._display(text, timeout_ms)

    def show_note(self, text: str, timeout_ms: int = 30000) -> None:
        """Something to know that must be read: passing messages do not cover it for NOTE_HOLD_S seconds."""
        self._remember(text)
        if time.monotonic() - self._error_shown_at < _ERROR_PRECEDENCE_S:
            return
        self._display(text, timeout_ms)
        self._note_until = time.monotonic() + NOTE_HOLD_S

    def _show_waiting(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and time.monotonic() - self._error_shown_at >= _ERROR_PRECEDENCE_S:
            self._display(*waiting)

    def _display(self, text: str, timeout_ms: int) -> None:
        self.setStyleSheet("")
        self.last_message = text
        self.showMessage(text, timeout_ms)

    def show_error(self, text: str) -> None:
        self._remember(text)
        self.setStyleSheet("QStatusBar { color: #d03030; }")
        self.last_message = text
        self._error_shown_at = time.monotonic()
        self.showMessage(text, 20000)

    def _remember(self, text: str) -> None:
        """The last messages stay readable in the tooltip, after they left the bar."""
        self.recent.append(f"{time.strftime('%H:%M:%S')}  {text}")
        self.setToolTip("\n".join(self.recent))

    def show_model(self, description: str, backend: str, reason: str) -> None:
        self.model_label.setText(f"model: {description}")
        self.backend_label.setText(f"backend: {backend}")
        self.backend_label.setToolTip(reason)

    def show_model_loading(self, _text: str = "") -> None:
        self.model_label.setText("model: loading...")
        self.backend_label.setText("backend: -")

    def show_no_model(self) -> None:
        self.model_label.setText("model: none (File \u203a Open model...)")
        self.backend_label.setText("backend: -")

    def show_rates(self, shown_fps: float, stats: WorkerStats, latency_ms: float | None) -> None:
        self.fps_label.setText(f"fps: {shown_fps:.1f} shown / {stats.explained_fps:.1f} explained")
        if latency_ms is None:
            self.latency_label.setText("latency: -")
        else:
            self.latency_label.setText(f"latency: {latency_ms:.0f} ms (engine {stats.model_ms:.0f} ms)")
        self.dropped_label.setText(f"dropped: {stats.dropped}")

    def show_recording(self, text: str) -> None:
        """'● REC 0:12.3' while recording ("" hides it)."""
        self.recording_label.setText(text)
        self.recording_label.setVisible(bool(text))
