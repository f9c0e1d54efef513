"""PlayerBar: play / pause, step, a frame-accurate slider, position and time, loop. Bound to AppState."""

from __future__ import annotations

from PyQt6.QtCore import QSignalBlocker, Qt, pyqtSignal
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from app.state import AppState


class PlayerBar(QWidget):
    seek_requested = pyqtSignal(int)  # the user asked for this frame (slider, step buttons)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        style = self.style()
        assert style is not None
        self.play_button = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play / pause (Space)")
        self.back_button = self._button(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward), "Previous frame (Left)"
        )
        self.forward_button = self._button(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Next frame (Right)"
        )
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Scrub: every position is explained")
        self.position_label = QLabel("no frame")
        self.position_label.setMinimumWidth(260)
        self.loop_box = QCheckBox("Loop")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        for widget in (self.back_button, self.play_button, self.forward_button):
            layout.addWidget(widget)
        layout.addWidget(self.slider, stretch=1)
        layout.addWidget(self.position_label)
        layout.addWidget(self.loop_box)

        self.play_button.clicked.connect(self.toggle_play)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(+1))
        self.slider.valueChanged.connect(self.seek_requested)
        self.slider.sliderPressed.connect(lambda: state.update(playing=False))  # scrubbing explains paused frames
        self.loop_box.toggled.connect(lambda checked: state.update(loop=checked))
        state.subscribe(self._on_state)
        self._on_state({"frame_index", "frame_count", "playing", "loop", "source_kind"})

    def _button(self, icon: QIcon, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        return button

    def toggle_play(self) -> None:
        if self.state.source_kind in ("video", "camera"):
            self.state.update(playing=not self.state.playing)

    def step(self, delta: int) -> None:
        """One frame back or forward; pauses first, so the frame stays on screen."""
        if not self.state.seekable:
            return
        self.state.update(playing=False)
        self.seek_requested.emit(self.state.stepped(delta))

    def _on_state(self, changed: set[str]) -> None:
        state = self.state
        if changed & {"frame_count", "source_kind"}:
            with QSignalBlocker(self.slider):
                self.slider.setRange(0, max((state.frame_count or 1) - 1, 0))
            for widget in (self.slider, self.back_button, self.forward_button):
                widget.setEnabled(state.seekable)
            self.play_button.setEnabled(state.source_kind in ("video", "camera"))
        if changed & {"frame_index", "frame_count", "source_kind"}:
            if state.frame_index is not None and not self.slider.isSliderDown():
                with QSignalBlocker(self.slider):  # showing where we are is not a request to go there
                    self.slider.setValue(state.frame_index)
            self.position_label.setText(state.position_text())
        if "playing" in changed:
            style = self.style()
            assert style is not None
            pixmap = QStyle.StandardPixmap.SP_MediaPause if state.playing else QStyle.StandardPixmap.SP_MediaPlay
            self.play_button.setIcon(style.standardIcon(pixmap))
        if "loop" in changed:
            with QSignalBlocker(self.loop_box):
                self.loop_box.setChecked(state.loop)
