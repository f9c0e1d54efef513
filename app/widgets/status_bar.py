"""StatusBar: model and black box, backend, fps (shown / explained), latency per frame, frames dropped, how far
behind the live edge a live source's pictures are; and
messages (errors stay longer and in red; notes stay long enough to be read: passing messages wait behind them).

Nothing overlaps: a message is one line on the left that is cut with an ellipsis where it does not fit (the whole
text in its tooltip, and every message of the session in Help > Messages); the model's name gives way next; the
numbers on the right keep their room."""

from __future__ import annotations

import time
from collections import deque

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

from app.explaining.results import WorkerStats
from app.widgets.elided_label import ElidedLabel

_ERROR_PRECEDENCE_S = 8.0
NOTE_HOLD_S = 8.0  # a note (e.g. "No webcam...; playing the demo clip") is not covered by passing messages sooner
LOG_LINES = 500  # messages of the session kept for Help > Messages
_ERROR_STYLE = "color: #d03030;"


class StatusBar(QStatusBar):
    logged = pyqtSignal(str)  # a message, time-stamped, as Help > Messages lists it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = ElidedLabel(minimum_width=80)
        self.addWidget(self.message_label, 1)
        self.model_label = ElidedLabel("model: loading...", minimum_width=120)
        self.backend_label = ElidedLabel("backend: -", minimum_width=70)
        self.fps_label = QLabel("fps -")
        self.latency_label = QLabel("latency -")
        self.dropped_label = QLabel("dropped 0")
        self.live_label = QLabel("")  # live sources: "behind live 85 ms"
        self.fps_label.setToolTip("frames per second shown on screen / explained by the pipeline")
        self.latency_label.setToolTip("from reading the frame to showing it (the engine's own time in brackets)")
        self.dropped_label.setToolTip("frames never shown: late in real-time playback, or replaced by newer ones")
        self.recording_label = QLabel("")
        self.recording_label.setStyleSheet("color: #d03030; font-weight: bold;")
        self.recording_label.setToolTip("recording the live view: its length so far (Ctrl+R stops)")
        self.addPermanentWidget(self.recording_label)
        self.addPermanentWidget(self.model_label)
        self.addPermanentWidget(self.backend_label)
        # the numbers change twice a second: each keeps the room of the widest it gets, so that neither they nor the
        # window's minimum width jump with them
        for label, widest in (
            (self.fps_label, "fps 888.8 / 888.8"),
            (self.latency_label, "latency 88888 ms (engine 8888)"),
            (self.dropped_label, "dropped 8888888"),
            (self.live_label, "behind live 88888 ms"),
        ):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance(widest) + 4)
            label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            self.addPermanentWidget(label)
        self.recording_label.setVisible(False)
        self.live_label.setVisible(False)
        self.last_message = ""
        self._error_shown_at = -1e9
        self._note_until = -1e9
        self._waiting: tuple[str, int] | None = None  # the newest passing message that came while a note was read
        self._after_note = QTimer(self)
        self._after_note.setSingleShot(True)
        self._after_note.timeout.connect(self._show_waiting)
        self._clear = QTimer(self)
        self._clear.setSingleShot(True)
        self._clear.timeout.connect(self._clear_message)  # (a method, not a lambda: Qt drops it with the bar)
        self.recent: deque[str] = deque(maxlen=12)  # the last messages, in the bar's tooltip
        self.log: deque[str] = deque(maxlen=LOG_LINES)  # every message of the session (Help > Messages)

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

    def _display(self, text: str, timeout_ms: int, style: str = "") -> None:
        self.message_label.setStyleSheet(style)
        self.last_message = text
        self.message_label.set_full_text(text)
        self._clear.start(timeout_ms)

    def _clear_message(self) -> None:
        self.message_label.set_full_text("")

    def currentMessage(self) -> str:  # noqa: N802 (Qt's name: the message shown now, whole)
        return self.message_label.full_text()

    def show_error(self, text: str) -> None:
        self._remember(text)
        self._error_shown_at = time.monotonic()
        self._display(text, 20000, _ERROR_STYLE)

    def _remember(self, text: str) -> None:
        """Every message stays readable after it left the bar: the last ones in the bar's tooltip, all of them in
        Help > Messages."""
        line = f"{time.strftime('%H:%M:%S')}  {text}"
        self.recent.append(line)
        self.log.append(line)
        self.setToolTip("\n".join(self.recent))
        self.logged.emit(line)

    def show_model(self, description: str, backend: str, reason: str) -> None:
        self.model_label.set_full_text(f"model: {description}")
        self.backend_label.set_full_text(f"backend: {backend}")
        self.backend_label.setToolTip(f"backend: {backend} ({reason})")

    def show_model_loading(self, _text: str = "") -> None:
        self.model_label.set_full_text("model: loading...")
        self.backend_label.set_full_text("backend: -")

    def show_no_model(self) -> None:
        self.model_label.set_full_text("model: none (File \u203a Open model...)")
        self.backend_label.set_full_text("backend: -")

    def show_rates(self, shown_fps: float, stats: WorkerStats, latency_ms: float | None) -> None:
        self.fps_label.setText(f"fps {shown_fps:.1f} / {stats.explained_fps:.1f}")
        if latency_ms is None:
            self.latency_label.setText("latency -")
        else:
            self.latency_label.setText(f"latency {latency_ms:.0f} ms (engine {stats.model_ms:.0f})")
        self.dropped_label.setText(f"dropped {stats.dropped}")

    def set_live_clock(self, clock: str) -> None:
        """A live source opened (its clock: FrameSource.live_clock), or another kind ("" hides the number)."""
        self.live_label.setVisible(bool(clock))
        self.live_label.setText("behind live -")
        self.live_label.setToolTip(
            f"how far behind now the pictures shown are: the median of the last 15, from when each picture was live "
            f"to when it was handed to the views; counted from {clock}"
        )

    def show_live_edge(self, behind_ms: float | None) -> None:
        if self.live_label.isVisible():
            if behind_ms is None:
                self.live_label.setText("behind live -")
            elif behind_ms < 10_000:
                self.live_label.setText(f"behind live {behind_ms:.0f} ms")
            else:  # a lost source's last picture, kept on screen while it reconnects
                self.live_label.setText(f"behind live {behind_ms / 1000:.0f} s")

    def show_recording(self, text: str) -> None:
        """'● REC 0:12.3' while recording ("" hides it)."""
        self.recording_label.setText(text)
        self.recording_label.setVisible(bool(text))
