"""ImageView: one picture (a numpy RGB array) scaled to fit, with a title and an optional box."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from app.images import to_qimage

_BACKGROUND = QColor(24, 24, 28)
_TITLE_BAND = QColor(0, 0, 0, 150)
_BOX_COLOUR = QColor(80, 255, 120)


class ImageView(QWidget):
    painted = pyqtSignal()  # after each paint (app/startup.py times the first explained frame by it)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.placeholder = "no picture yet"
        self._array: np.ndarray | None = None  # what was given, for tests and snapshots
        self._image: QImage | None = None
        self._box: tuple[int, int, int, int] | None = None
        self.note = ""  # a line written over the picture (e.g. "preparing the model...")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)

    def sizeHint(self) -> QSize:
        return QSize(480, 360)

    @property
    def array(self) -> np.ndarray | None:
        """The picture on screen, as given (tests compare it with the explanation)."""
        return self._array

    def set_image(self, array: np.ndarray | None, box: tuple[int, int, int, int] | None = None, note: str = "") -> None:
        self.note = note
        if array is None:
            self._array = self._image = None
        else:
            self._array = np.ascontiguousarray(array)
            # one conversion to the painter's native 32-bit format is cheaper than scaling 24-bit pixels
            self._image = to_qimage(self._array).convertToFormat(QImage.Format.Format_RGB32)
        self._box = box
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.set_image(None)

    def image_rect(self) -> QRectF:
        """Where the picture lands inside the widget: as large as fits, aspect ratio kept, centred."""
        if self._image is None:
            return QRectF()
        scale = min(self.width() / self._image.width(), self.height() / self._image.height())
        width, height = self._image.width() * scale, self._image.height() * scale
        return QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), _BACKGROUND)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        else:
            target = self.image_rect()
            painter.drawImage(target, self._image)
            if self._box is not None:
                self._draw_box(painter, target)
            if self.note:
                self._draw_note(painter, target)
        self._draw_title(painter)
        painter.end()
        self.painted.emit()

    def _draw_box(self, painter: QPainter, target: QRectF) -> None:
        assert self._image is not None and self._box is not None
        scale = target.width() / self._image.width()
        x0, y0, x1, y1 = self._box
        painter.setPen(QPen(_BOX_COLOUR, 2))
        painter.drawRect(QRectF(target.x() + x0 * scale, target.y() + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale))

    def _draw_note(self, painter: QPainter, target: QRectF) -> None:
        """The note in a band across the bottom of the picture, elided to its width."""
        metrics = painter.fontMetrics()
        text = metrics.elidedText(self.note, Qt.TextElideMode.ElideRight, max(int(target.width()) - 16, 0))
        band = QRectF(target.left(), target.bottom() - metrics.height() - 10, target.width(), metrics.height() + 10)
        painter.fillRect(band, _TITLE_BAND)
        painter.setPen(QColor(250, 220, 120))
        painter.drawText(band, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_title(self, painter: QPainter) -> None:
        metrics = painter.fontMetrics()
        band = QRectF(0, 0, metrics.horizontalAdvance(self.title) + 16, metrics.height() + 8)
        painter.fillRect(band, _TITLE_BAND)
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(band, Qt.AlignmentFlag.AlignCenter, self.title)
