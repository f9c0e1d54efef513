"""ViewGrid: the four views of an explanation in a 2x2 grid, or one of them large."""

from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import QGridLayout, QWidget

from app.widgets.image_view import ImageView
from engine.contract import VIEW_ARRAYS, VIEWS, Explanation
from engine.views import LAYOUTS, VIEW_TITLES


class ViewGrid(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views = {name: ImageView(VIEW_TITLES[name]) for name in VIEWS}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for position, name in enumerate(VIEWS):
            grid.addWidget(self.views[name], position // 2, position % 2)
        self.layout_name = "grid"
        self.no_model_text = "no model loaded"

    def set_layout(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.layout_name = layout
        for name, view in self.views.items():
            view.setVisible(layout in ("grid", name))

    def show_result(self, frame: np.ndarray, explanation: Explanation | None, show_box: bool) -> None:
        """An Explanation's four pictures; without one (no model yet), the bare frame and a note."""
        if explanation is None:
            self.views["overlay"].set_image(frame)
            for name in VIEWS[1:]:
                self.views[name].set_placeholder(self.no_model_text)
            return
        box = explanation.box if show_box else None
        for name, view in self.views.items():
            view.set_image(getattr(explanation, VIEW_ARRAYS[name]), box if name == "overlay" else None)

    def clear(self, text: str) -> None:
        for view in self.views.values():
            view.set_placeholder(text)
