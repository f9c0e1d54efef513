"""Evidence over time, as the app's timeline keeps it: per frame of one video, the rows of engine.video.frametable (the
class's probability on the frame, on the preserved and on the destroyed view; the mask's mean and share), for one
class, one fill and one model (plain Python + numpy, tested headless).

Rows come from three places, all for the same key: the frames explained live (the frame's probability and the mask;
the live mask never waits for its evidence), the live evidence checks of those frames (the preserved and destroyed
probabilities, about ten a second), and the background pass over the whole file (app/timeline/whole_file_pass.py:
complete rows, made as `engine render` makes them). A complete row is never replaced by a partial one.

The timeline follows one key at a time; the rows of the last few keys are kept, so that going back to a class (or a
fill) seen a moment ago shows its rows at once instead of computing them again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.contract import Explanation
from engine.video.frametable import FrameRecord, FrameTableWriter

KEPT_KEYS = 6  # keys whose rows are kept besides the current one (each row is a few dozen bytes)

SERIES = ("p_frame", "p_preserved", "p_destroyed", "mask_mean")
"""What the timeline draws, by FrameRecord field: the three probabilities and the mask's area (its mean)."""


@dataclass(frozen=True)
class TimelineKey:
    """What the numbers of a timeline depend on."""

    path: str  # the video file
    target: int  # the class explained on every frame (never AUTO: "auto" is resolved to a class first)
    fill: str  # what replaces removed pixels in the preserved and destroyed views (their probabilities change)
    model: int  # counts the models loaded: another model, other numbers
    aspect: str = "stretch"  # a wide frame stretched or padded to the model's input: other numbers


def live_record(index: int, fps: float, explanation: Explanation) -> FrameRecord:
    """The row of a frame explained live: its views (and box) are at the size they are shown at, the table's box
    is in the frame's pixels."""
    record = FrameRecord.of(index, fps, explanation)
    if explanation.box is None:
        return record
    height, width = explanation.frame.shape[:2]
    view_width, view_height = explanation.view_size
    x0, y0, x1, y1 = explanation.box
    return replace(
        record,
        box_x0=x0 * width // view_width,
        box_y0=y0 * height // view_height,
        box_x1=-(-x1 * width // view_width),  # x1 / y1 are exclusive: round up
        box_y1=-(-y1 * height // view_height),
    )


def is_complete(record: FrameRecord | None) -> bool:
    """A row with its evidence (the preserved and destroyed probabilities)."""
    return record is not None and record.p_preserved is not None and record.p_destroyed is not None


class CompleteRows:
    """`index in rows`: frame `index` has a complete row for `key` now. Read from the background pass's thread while
    the GUI thread fills rows in: a stale answer costs a frame explained twice, or passed over until the next job."""

    def __init__(self, timeline: EvidenceTimeline, key: TimelineKey | None) -> None:
        self._timeline = timeline
        self._key = key

    def __contains__(self, index: object) -> bool:
        timeline = self._timeline
        rows = timeline.rows if timeline.key == self._key else []
        return isinstance(index, int) and 0 <= index < len(rows) and is_complete(rows[index])


class EvidenceTimeline:
    """The rows of the current key, frame by frame (None: not computed yet)."""

    def __init__(self) -> None:
        self.key: TimelineKey | None = None
        self.fps = 25.0
        self.class_name = ""
        self.rows: list[FrameRecord | None] = []
        self._kept: OrderedDict[TimelineKey, tuple[list[FrameRecord | None], str]] = OrderedDict()

    # -- which numbers ------------------------------------------------------------------------------------------
    def select(self, key: TimelineKey | None, frame_count: int, fps: float) -> None:
        """Follow `key` (None: no timeline): its kept rows, or none yet."""
        if key == self.key:
            self.resize(frame_count)
            return
        if self.key is not None:
            self._kept[self.key] = (self.rows, self.class_name)
            self._kept.move_to_end(self.key)
            while len(self._kept) > KEPT_KEYS:
                self._kept.popitem(last=False)
        self.key, self.fps = key, fps
        self.rows, self.class_name = self._kept.pop(key, ([], "")) if key is not None else ([], "")
        self.resize(frame_count)

    def forget(self) -> None:
        """Another model or another file: nothing kept is valid any more."""
        self._kept.clear()
        self.select(None, 0, self.fps)

    def resize(self, frame_count: int) -> None:
        """The video's frame count (headers only estimate it: the exact count comes later)."""
        count = max(frame_count, 0)
        if count > len(self.rows):
            self.rows.extend([None] * (count - len(self.rows)))
        else:
            del self.rows[count:]

    @property
    def frame_count(self) -> int:
        return len(self.rows)

    # -- filling in ---------------------------------------------------------------------------------------------
    def add_explained(self, index: int, explanation: Explanation) -> bool:
        """A frame explained live with the key's class: its probability and mask (the evidence comes later). True
        when the timeline changed."""
        if self.key is None or explanation.target != self.key.target or explanation.fill != self.key.fill:
            return False
        if not 0 <= index < len(self.rows) or is_complete(self.rows[index]):
            return False
        self.class_name = explanation.target_name
        self.rows[index] = live_record(index, self.fps, explanation)
        return True

    def add_evidence(self, index: int | None, target: int, probabilities: dict[str, float]) -> bool:
        """The live evidence check of frame `index` (for `target`): completes the row of its explanation."""
        if self.key is None or target != self.key.target or index is None or not 0 <= index < len(self.rows):
            return False
        row = self.rows[index]
        if row is None:
            return False
        self.rows[index] = replace(
            row,
            p_frame=probabilities["frame"],
            p_preserved=probabilities["preserved"],
            p_destroyed=probabilities["destroyed"],
        )
        return True

    def add_record(self, key: TimelineKey, record: FrameRecord) -> bool:
        """A complete row from the background pass for `key` (dropped when the timeline follows another key)."""
        if key != self.key or not 0 <= record.frame < len(self.rows) or is_complete(self.rows[record.frame]):
            return False
        self.class_name = record.class_name
        self.rows[record.frame] = record
        return True

    # -- reading ------------------------------------------------------------------------------------------------
    def complete_frames(self) -> frozenset[int]:
        return frozenset(index for index, row in enumerate(self.rows) if is_complete(row))

    def completed(self) -> CompleteRows:
        """The frames whose rows are complete, asked as they are now (the background pass asks before each frame)."""
        return CompleteRows(self, self.key)

    def filled(self) -> int:
        """Frames with a row (complete or not)."""
        return sum(row is not None for row in self.rows)

    def series(self, name: str) -> np.ndarray:
        """One of SERIES, frame by frame, float64; NaN where it is not known yet."""
        if name not in SERIES:
            raise ValueError(f"series must be one of {SERIES}, not {name!r}")
        values = [getattr(row, name) if row is not None else None for row in self.rows]
        return np.array([np.nan if value is None else value for value in values], dtype=np.float64)

    def records(self) -> list[FrameRecord]:
        return [row for row in self.rows if row is not None]

    def write_csv(self, path: str | Path) -> int:
        """The rows known so far as engine.video.frametable's CSV (the columns `engine render` writes); returns how
        many."""
        with FrameTableWriter(path) as writer:
            for record in self.records():
                writer.write(record)
            return writer.rows
