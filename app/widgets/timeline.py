"""TimelineView: evidence over time under the player, painted (QPainter; pyqtgraph is not a dependency here).

For the video on screen and the class explained (in "auto", the class each frame is explained for): the black box's
probability of the class on each frame (white), on the preserved view (green: a good mask keeps it) and on the
destroyed view (red: a good mask removes it), and the mask's area (its mean, blue, filled), all on one 0..1 scale; a
yellow line marks the frame on screen. Frames not computed yet are gaps (a lone computed frame is a dot); the header
says how many rows are the background pass's (computed in order, as the export) and how many the live view's. A
click or a drag seeks, as the slider does; hovering shows the numbers of the frame under the pointer. The numbers
live in app.timeline.rows.EvidenceTimeline.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QToolTip, QWidget

from app.state import AppState
from app.timeline.rows import EvidenceTimeline
from engine.contract import AUTO

HEIGHT = 104
HEADER = 16  # the line of text above the plot
MARGIN = 4
CURVES = (  # (series, label, colour), drawn in this order over the filled mask area
    ("p_frame", "frame", QColor(235, 235, 235)),
    ("p_preserved", "preserved", QColor(80, 205, 120)),
    ("p_destroyed", "destroyed", QColor(240, 95, 85)),
)
MASK_COLOUR = QColor(70, 130, 235)
BACKGROUND = QColor(28, 28, 30)
GRID = QColor(70, 70, 74)
CURSOR = QColor(250, 210, 60)


def columns(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) to draw `values` (one per frame, NaN: unknown) across `width` pixels: one point per frame at the centre
    of its cell when the frames fit, else the mean of the known values of each pixel column (NaN where none)."""
    count = len(values)
    if count == 0 or width <= 0:
        return np.zeros(0), np.zeros(0)
    if count <= width:
        return (np.arange(count) + 0.5) * width / count, values
    column = np.minimum((np.arange(count) * width) // count, width - 1)
    known = np.isfinite(values)
    sums = np.bincount(column[known], weights=values[known], minlength=width)
    counts = np.bincount(column[known], minlength=width)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return np.arange(width) + 0.5, means


def runs(y: np.ndarray) -> list[slice]:
    """The stretches of consecutive known values (NaN separates them)."""
    known = np.isfinite(y).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], known, [0]))))
    return [slice(int(start), int(stop)) for start, stop in zip(edges[::2], edges[1::2])]


class TimelineView(QWidget):
    seek_requested = pyqtSignal(int)  # the user clicked or dragged to this frame

    def __init__(self, state: AppState, timeline: EvidenceTimeline, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.timeline = timeline
        self.setFixedHeight(HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)  # the numbers under the pointer
        self.setToolTip("Evidence over time: click or drag to go to a frame")
        state.subscribe(self._on_state)
        self._on_state({"source_kind"})

    # -- frames and pixels --------------------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        return QRectF(MARGIN, HEADER, max(self.width() - 2 * MARGIN, 1), max(self.height() - HEADER - MARGIN, 1))

    def frame_at(self, x: float) -> int | None:
        """The frame whose cell holds pixel column `x` (None: no video)."""
        count = self.timeline.frame_count
        if count == 0:
            return None
        plot = self.plot_rect()
        return min(max(int((x - plot.left()) * count / plot.width()), 0), count - 1)

    def x_of(self, frame: int) -> float:
        """The centre of frame `frame`'s cell."""
        plot = self.plot_rect()
        return plot.left() + (frame + 0.5) * plot.width() / max(self.timeline.frame_count, 1)

    # -- the user -----------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            self.state.update(playing=False)  # as on the slider: scrubbing explains paused frames
            self._seek_to(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:
        if event is None:
            return
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._seek_to(event.position().x())
        else:
            frame = self.frame_at(event.position().x())
            if frame is not None:
                QToolTip.showText(event.globalPosition().toPoint(), self.describe(frame), self)

    def _seek_to(self, x: float) -> None:
        frame = self.frame_at(x)
        if frame is not None and self.state.seekable:
            self.seek_requested.emit(frame)

    def describe(self, frame: int) -> str:
        """The numbers of one frame, as the tooltip says them."""
        row = self.timeline.rows[frame] if 0 <= frame < self.timeline.frame_count else None
        if row is None:
            return f"frame {frame}: not computed yet"

        def number(value: float | None) -> str:
            return "\u2013" if value is None else f"{value:.3f}"

        return (
            f"frame {frame}: {row.class_name}\np(frame) {number(row.p_frame)}   preserved {number(row.p_preserved)}"
            f"   destroyed {number(row.p_destroyed)}\nmask area {row.mask_mean:.3f}"
        )

    def _on_state(self, changed: set[str]) -> None:
        if "source_kind" in changed:
            self.setVisible(self.state.source_kind == "video")
        if changed & {"frame_index", "frame_count", "source_kind"}:
            self.update()

    # -- painting -----------------------------------------------------------------------------------------------
    def header_text(self) -> str:
        timeline = self.timeline
        if timeline.key is None:
            return "Evidence over time: waiting for a video and a model"
        if timeline.key.target == AUTO:
            name = "auto, the class of each frame"
        else:
            name = timeline.class_name or f"class {timeline.key.target}"
        computed = len(timeline.final)
        return (
            f"Evidence over time: {name}   ({computed} of {timeline.frame_count} frames computed in order"
            f"{f', {timeline.filled() - computed} as shown' if timeline.filled() > computed else ''})"
        )

    def paintEvent(self, _event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), BACKGROUND)
        plot = self.plot_rect()
        painter.setPen(QPen(GRID, 1, Qt.PenStyle.DotLine))
        for level in (0.0, 0.5, 1.0):
            y = plot.bottom() - level * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        self._paint_header(painter)
        self._paint_mask_area(painter, plot)
        for name, _label, colour in CURVES:
            self._paint_curve(painter, plot, self.timeline.series(name), colour)
        index = self.state.frame_index
        if index is not None and 0 <= index < self.timeline.frame_count:
            painter.setPen(QPen(CURSOR, 1))
            x = self.x_of(index)
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        painter.end()

    def _paint_header(self, painter: QPainter) -> None:
        metrics = painter.fontMetrics()
        baseline = HEADER - 4
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(QPointF(MARGIN, baseline), self.header_text())
        x = float(self.width() - MARGIN)
        for label, colour in reversed([(label, colour) for _, label, colour in CURVES] + [("mask area", MASK_COLOUR)]):
            x -= metrics.horizontalAdvance(label) + 18
            painter.fillRect(QRectF(x, baseline - 7, 10, 4), colour)
            painter.setPen(colour)
            painter.drawText(QPointF(x + 13, baseline), label)

    def _points(self, plot: QRectF, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = columns(values, int(plot.width()))
        return plot.left() + x, plot.bottom() - np.clip(y, 0.0, 1.0) * plot.height()

    def _paint_curve(self, painter: QPainter, plot: QRectF, values: np.ndarray, colour: QColor) -> None:
        xs, ys = self._points(plot, values)
        painter.setPen(QPen(colour, 1.5))
        painter.setBrush(colour)
        for run in runs(ys):
            if run.stop - run.start == 1:  # a lone frame (explained live): a dot
                painter.drawEllipse(QPointF(xs[run.start], ys[run.start]), 1.8, 1.8)
            else:
                painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in zip(xs[run], ys[run])]))
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_mask_area(self, painter: QPainter, plot: QRectF) -> None:
        xs, ys = self._points(plot, self.timeline.series("mask_mean"))
        fill = QColor(MASK_COLOUR)
        fill.setAlpha(110)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        half = plot.width() / max(self.timeline.frame_count, 1) / 2 if len(xs) < plot.width() else 0.5
        for run in runs(ys):
            left, right = xs[run.start] - half, xs[run.stop - 1] + half  # each frame's cell, filled
            outline = [QPointF(left, plot.bottom()), QPointF(left, ys[run.start])]
            outline += [QPointF(x, y) for x, y in zip(xs[run], ys[run])]
            outline += [QPointF(right, ys[run.stop - 1]), QPointF(right, plot.bottom())]
            painter.drawPolygon(QPolygonF(outline))
        painter.setBrush(Qt.BrushStyle.NoBrush)
