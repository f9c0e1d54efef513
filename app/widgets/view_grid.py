"""ViewGrid: the four views of an explanation in a 2x2 grid, or one of them large."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import QGridLayout, QWidget

from app.widgets.image_view import ImageView
from engine.contract import VIEW_ARRAYS, VIEWS, Explanation
from engine.runtime.views import LAYOUTS, VIEW_TITLES

NO_MODEL = "no model loaded"
PREPARING = "preparing the model\u2026"


class ViewGrid(QWidget):
    """The views; it says how large one view is (in device pixels) whenever that changes, so that the pipeline makes
    the pictures at the size they are shown instead of at the frame's full size."""

    view_size_changed = pyqtSignal(tuple)  # (width, height) of one view

    _SPACING = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = {name: ImageView(VIEW_TITLES[name]) for name in VIEWS}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(self._SPACING)
        for position, name in enumerate(VIEWS):
            grid.addWidget(self.views[name], position // 2, position % 2)
        self.layout_name = "grid"
        self.no_model_text = NO_MODEL  # what the views say while a frame comes without an explanation

    def set_layout(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.layout_name = layout
        for name, view in self.views.items():
            view.setVisible(layout in ("grid", name))
        self._say_view_size()

    def view_size(self) -> tuple[int, int]:
        """(width, height) of one view in device pixels: a quarter of the grid, or all of it for one view."""
        ratio = self.devicePixelRatioF()
        width, height = self.width(), self.height()
        if self.layout_name == "grid":
            width, height = (width - self._SPACING) // 2, (height - self._SPACING) // 2
        return max(round(width * ratio), 1), max(round(height * ratio), 1)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._say_view_size()

    def _say_view_size(self) -> None:
        size = self.view_size()
        if size != getattr(self, "_said_size", None):
            self._said_size = size
            self.view_size_changed.emit(size)

    def show_result(self, frame: np.ndarray, explanation: Explanation | None, show_box: bool) -> None:
        """An Explanation's four pictures; without one (no model yet), the bare frame and a note."""
        if explanation is None:
            self.views["overlay"].set_image(frame, note=self.no_model_text)
            for name in VIEWS[1:]:
                self.views[name].set_placeholder(self.no_model_text)
            return
        box = explanation.box if show_box else None
        for name, view in self.views.items():
            view.set_image(getattr(explanation, VIEW_ARRAYS[name]), box if name == "overlay" else None)

    def clear(self, text: str) -> None:
        for view in self.views.values():
            view.set_placeholder(text)
