"""StartupClock: when the window first painted a picture and an explained frame, in seconds since the process
started (what a user waits for at launch). `--report-startup` prints it from a normal windowed launch; the headless
`--benchmark-frames` prints the same figures, taken the same way (offscreen, the window paints all the same).

"Painted" is the end of a view's paintEvent after the result reached it: what the next flush puts on the screen.
"""

from __future__ import annotations

import sys

from PyQt6.QtCore import QObject, pyqtSignal

from app.explaining.results import FrameResult
from app.explaining.stats import process_age
from app.window import MainWindow


class StartupClock(QObject):
    explained_painted = pyqtSignal()  # the first explained frame is on screen (once)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.first_picture_s: float | None = None  # process age when the first frame was painted
        self.first_explained_s: float | None = None  # ... the first explained frame
        self.first_explained_index: int | None = None  # which frame of the file it was (None: a camera)
        self.model_ready_s: float | None = None  # ... when the model was ready (loaded, warmed up)
        self._picture_pending = False
        self._explained_pending = False
        window.result_shown.connect(self._on_result)
        window.controller.model_ready.connect(self._on_model_ready)
        for view in window.grid.views.values():
            view.painted.connect(self._on_painted)

    def _on_model_ready(self, _info: object) -> None:
        if self.model_ready_s is None:
            self.model_ready_s = process_age()

    def _on_result(self, result: FrameResult) -> None:
        if self.first_picture_s is None:
            self._picture_pending = True
        if self.first_explained_s is None and result.explanation is not None:
            self._explained_pending = True
            self.first_explained_index = result.frame_index

    def _on_painted(self) -> None:
        if self._picture_pending:
            self._picture_pending = False
            self.first_picture_s = process_age()
        if self._explained_pending:
            self._explained_pending = False
            self.first_explained_s = process_age()
            self.explained_painted.emit()

    def summary(self) -> str:
        """One line: launch to the first picture, to the model ready and to the first explained frame painted."""
        frame = "" if self.first_explained_index is None else f" (frame {self.first_explained_index})"
        return (
            f"launch to first picture {_seconds(self.first_picture_s)}, model ready {_seconds(self.model_ready_s)}, "
            f"first explained frame painted {_seconds(self.first_explained_s)}{frame} "
            f"(from the start of the process)"
        )


def report_when_explained(clock: StartupClock) -> None:
    """--report-startup: print the summary once the first explained frame is painted (the app goes on)."""

    def report() -> None:
        print(f"startup: {clock.summary()}", flush=True)
        sys.stdout.flush()

    clock.explained_painted.connect(report)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
