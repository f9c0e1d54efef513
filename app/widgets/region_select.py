"""RegionSelector: drag a rectangle on a view with the left button to choose the region explained.

An event filter on the views (ImageView): it draws a rubber band while the button is held and, on release, says
where the drag went in the shown picture's pixels (`dragged`). It lets every event through, so a click still does
whatever a click does (focus, for one).
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QRubberBand

from app.widgets.image_view import ImageView

_MIN_DRAG = 4  # screen pixels: less is a click


class RegionSelector(QObject):
    # (x0, y0, x1, y1) in the shown picture's pixels, (picture width, picture height)
    dragged = pyqtSignal(tuple, tuple)

    def __init__(self, views: list[ImageView], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._start: QPoint | None = None
        self._view: ImageView | None = None
        self._band: QRubberBand | None = None
        for view in views:
            view.installEventFilter(self)
            view.setCursor(Qt.CursorShape.CrossCursor)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if not isinstance(watched, ImageView) or not isinstance(event, QMouseEvent):
            return False
        kind = event.type()
        position = event.position().toPoint()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            if watched.array is not None:
                self._start, self._view = position, watched
                self._band = QRubberBand(QRubberBand.Shape.Rectangle, watched)
                self._band.setGeometry(QRect(position, QSize()))
                self._band.show()
        elif kind == QEvent.Type.MouseMove and self._view is watched and self._band is not None:
            assert self._start is not None
            self._band.setGeometry(QRect(self._start, position).normalized())
        elif kind == QEvent.Type.MouseButtonRelease and self._view is watched and self._start is not None:
            self._finish(watched, self._start, position)
        return False

    def _finish(self, view: ImageView, start: QPoint, end: QPoint) -> None:
        if self._band is not None:
            self._band.hide()
            self._band.deleteLater()
        self._band, self._start, self._view = None, None, None
        picture = view.array
        if picture is None or (abs(end.x() - start.x()) < _MIN_DRAG and abs(end.y() - start.y()) < _MIN_DRAG):
            return
        target = view.image_rect()
        scale = picture.shape[1] / target.width()

        def to_picture(point: QPoint) -> QPointF:
            return QPointF((point.x() - target.x()) * scale, (point.y() - target.y()) * scale)

        first, last = to_picture(start), to_picture(end)
        self.dragged.emit((first.x(), first.y(), last.x(), last.y()), (picture.shape[1], picture.shape[0]))
