"""Evidence over time as a table: one row per explained frame of a video, written as CSV (plain Python + numpy).

`engine render` writes it beside the video it renders; the app's timeline keeps the same rows. Columns:

    frame, time_s                      the frame's index in the video and its time (index / frames per second)
    class_index, class_name            the class explained on that frame
    p_frame, p_preserved, p_destroyed  the black box's probability of that class on the frame, on the preserved
                                       view Phi(X, M) and on the destroyed view Phi(X, 1 - M) (empty without evidence)
    mask_mean, mask_share              the mask's mean, and the share of its pixels >= 0.5
    box_x0, box_y0, box_x1, box_y1     the box around mask >= 0.5 in frame pixels, x1 / y1 exclusive (empty: no box)

The writer flushes every row, so a render that stops half-way leaves the rows of the frames it wrote.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.closing import Closing
from engine.contract import Explanation
from engine.errors import VideoError

MASK_THRESHOLD = 0.5  # the box's threshold, and the share's


@dataclass(frozen=True)
class FrameRecord:
    """One row of the table (see the module's docstring)."""

    frame: int
    time_s: float
    class_index: int
    class_name: str
    p_frame: float | None
    p_preserved: float | None
    p_destroyed: float | None
    mask_mean: float
    mask_share: float
    box_x0: int | None
    box_y0: int | None
    box_x1: int | None
    box_y1: int | None

    @classmethod
    def of(cls, index: int, fps: float, explanation: Explanation) -> FrameRecord:
        """The row of frame `index` of a video at `fps` frames per second."""
        probabilities = explanation.probabilities or {}
        mask = explanation.mask
        box = explanation.box or (None, None, None, None)
        return cls(
            index,
            index / fps,
            explanation.target,
            explanation.target_name,
            probabilities.get("frame"),
            probabilities.get("preserved"),
            probabilities.get("destroyed"),
            float(mask.mean()),
            float(np.count_nonzero(mask >= MASK_THRESHOLD)) / max(mask.size, 1),
            *box,
        )


COLUMNS = tuple(field.name for field in fields(FrameRecord))


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class FrameTableWriter(Closing):
    """Rows to a CSV file, one per call to `write`, flushed at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: TextIO | None = self.path.open("w", newline="", encoding="utf-8")
        except OSError as error:
            raise VideoError(f"cannot write the frame table {self.path}: {error.strerror or error}") from error
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self.rows = 0

    def write(self, record: FrameRecord) -> None:
        if self._file is None:
            raise ValueError(f"{self.path} is closed")
        self._csv.writerow([_cell(value) for value in astuple(record)])
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
