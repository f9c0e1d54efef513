"""PlayerBar: play / pause, step, a frame-accurate slider, position and time, loop. Bound to AppState.

Steps count from the frame last asked for, not from the frame on screen: a held arrow key asks faster than frames
are explained, and counting from the screen would aim several presses at the same frame. A click on the slider's
track goes where it was clicked (not a page step)."""

from __future__ import annotations

from typing import cast

from PyQt6.QtCore import QSignalBlocker, Qt, pyqtSignal
from PyQt6.QtGui import QIcon
from PyQt6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProxyStyle,
    QSlider,
    QStyle,
    QStyleHintReturn,
    QStyleOption,
    QToolButton,
    QWidget,
)

from app.state import AppState


class _ClickJumps(QProxyStyle):
    """The left button on a slider's track jumps to where it is pressed (and drags from there)."""

    def styleHint(
        self,
        hint: QStyle.StyleHint,
        option: QStyleOption | None = None,
        widget: QWidget | None = None,
        returned: QStyleHintReturn | None = None,
    ) -> int:
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return cast(int, Qt.MouseButton.LeftButton.value)  # (an int at run time; the stubs say MouseButton)
        return super().styleHint(hint, option, widget, returned)


SLIDER_MIN_WIDTH = 160  # pixels: about four frames a pixel on a 600-frame clip


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
        self._slider_style = _ClickJumps()  # (kept: a style set on a widget is not owned by it)
        self.slider.setStyle(self._slider_style)
        self.slider.setToolTip("Scrub: click or drag, every position is explained")
        self.slider.setMinimumWidth(SLIDER_MIN_WIDTH)  # a narrow window squeezes the views, not the slider to nothing
        self.requested: int | None = None  # the frame last asked for and not yet on screen
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
        self.slider.valueChanged.connect(self._request)
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
        if self.state.source_kind in ("video", "camera", "stream"):
            self.state.update(playing=not self.state.playing)

    def step(self, delta: int) -> None:
        """Frames back or forward from the frame last asked for; pauses first, so the frame stays on screen."""
        if not self.state.seekable:
            return
        self.state.update(playing=False)
        base = self.requested if self.requested is not None else (self.state.frame_index or 0)
        self._request(self.state.clamp_frame(base + delta))

    def go_to_start(self) -> None:
        self._go_to(0)

    def go_to_end(self) -> None:
        self._go_to((self.state.frame_count or 1) - 1)

    def _go_to(self, index: int) -> None:
        if self.state.seekable:
            self.state.update(playing=False)
            self._request(index)

    def _request(self, index: int) -> None:
        """Ask for frame `index`: shown on the slider at once, counted from by the next step."""
        self.requested = index
        with QSignalBlocker(self.slider):
            self.slider.setValue(index)
        self.seek_requested.emit(index)

    def _on_state(self, changed: set[str]) -> None:
        state = self.state
        if changed & {"playing", "source_kind", "source_label"} or (
            "frame_index" in changed and state.frame_index == self.requested
        ):
            self.requested = None  # reached, or the frames move on by themselves: count from the screen again
        if changed & {"frame_count", "source_kind"}:
            with QSignalBlocker(self.slider):
                self.slider.setRange(0, max((state.frame_count or 1) - 1, 0))
            for widget in (self.slider, self.back_button, self.forward_button):
                widget.setEnabled(state.seekable)
            self.play_button.setEnabled(state.source_kind in ("video", "camera", "stream"))
        if changed & {"frame_index", "frame_count", "source_kind"}:
            if state.frame_index is not None and not self.slider.isSliderDown() and self.requested is None:
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
