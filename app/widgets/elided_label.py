"""ElidedLabel: one line of text that fits whatever width it is given: cut with an ellipsis where it does not fit,
the whole text in its tooltip. Layouts give it the width of its whole text when there is room, and may squeeze it
down to `minimum_width` (so that a long note never pushes other widgets out of the window, nor runs under them)."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", minimum_width: int = 60, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._minimum_width = minimum_width
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self.updateGeometry()
        self._fit()

    def full_text(self) -> str:
        return self._full

    def shown_text(self) -> str:
        """What is drawn now (the whole text, or its beginning and an ellipsis)."""
        return self.text()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        width = metrics.horizontalAdvance(self._full) + margins.left() + margins.right() + 2
        return QSize(max(width, self._minimum_width), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self._minimum_width, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        margins = self.contentsMargins()
        room = max(self.width() - margins.left() - margins.right(), 0)
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room))
