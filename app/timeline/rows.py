"""Evidence over time, as the app's timeline keeps it: per frame of one video, the rows of engine.video.frametable (the
class's probability on the frame, on the preserved and on the destroyed view; the mask's mean and share), for one
key: the class (or "auto"), its steadiness, fill, aspect and model (plain Python + numpy, tested headless).

The rows that count come from the background pass over the whole file (app/timeline/whole_file_pass.py): every
frame explained in order from the first, through the same steady run as the live view and the export, so they are
the export's rows. Until the pass reaches a frame, the row of the live view stands in for it (the frame's
probability and the mask as shown, then its live evidence check): drawn at once, but provisional, replaced by the
pass's row and never saved in the CSV. Beside the rows, for each frame the live view showed otherwise than the
export does (alone after a jump, frames passed over while playing late), the note that says how (`shown_otherwise`):
the export's caption carries it.

The timeline follows one key at a time; the rows of the last few keys are kept, so that going back to a class (or a
fill) seen a moment ago shows its rows at once instead of computing them again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.contract import AUTO, Explanation
from engine.runtime.temporal import Steadiness
from engine.video.frametable import FrameRecord, FrameTableWriter

KEPT_KEYS = 6  # keys whose rows are kept besides the current one (each row is a few dozen bytes)

SERIES = ("p_frame", "p_preserved", "p_destroyed", "mask_mean")
"""What the timeline draws, by FrameRecord field: the three probabilities and the mask's area (its mean)."""


@dataclass(frozen=True)
class TimelineKey:
    """What the numbers of a timeline depend on."""

    path: str  # the video file
    target: int  # the class explained, or AUTO: the class the live view and the export explain on each frame
    fill: str  # what replaces removed pixels in the preserved and destroyed views (their probabilities change)
    model: int  # counts the models loaded: another model, other numbers
    aspect: str = "stretch"  # a wide frame stretched or padded to the model's input: other numbers
    steadiness: Steadiness = Steadiness()  # the class held in "auto" and the mask average over time


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


class EvidenceTimeline:
    """The rows of the current key, frame by frame (None: not computed yet), which of them are the pass's (`final`),
    and the notes of the frames the live view showed otherwise."""

    def __init__(self) -> None:
        self.key: TimelineKey | None = None
        self.fps = 25.0
        self.class_name = ""
        self.rows: list[FrameRecord | None] = []
        self.final: set[int] = set()  # frames whose row the pass computed (in order, as the export)
        self.shown_otherwise: dict[int, str] = {}  # frame -> how the live view showed it otherwise than the export
        self._kept: OrderedDict[TimelineKey, _Kept] = OrderedDict()

    # -- which numbers ------------------------------------------------------------------------------------------
    def select(self, key: TimelineKey | None, frame_count: int, fps: float) -> None:
        """Follow `key` (None: no timeline): its kept rows, or none yet."""
        if key == self.key:
            self.resize(frame_count)
            return
        if self.key is not None:
            self._kept[self.key] = _Kept(self.rows, self.final, self.shown_otherwise, self.class_name)
            self._kept.move_to_end(self.key)
            while len(self._kept) > KEPT_KEYS:
                self._kept.popitem(last=False)
        self.key, self.fps = key, fps
        kept = self._kept.pop(key, None) if key is not None else None
        kept = kept or _Kept([], set(), {}, "")
        self.rows, self.final, self.shown_otherwise, self.class_name = (
            kept.rows,
            kept.final,
            kept.shown_otherwise,
            kept.class_name,
        )
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
            self.final = {index for index in self.final if index < count}

    @property
    def frame_count(self) -> int:
        return len(self.rows)

    # -- filling in ---------------------------------------------------------------------------------------------
    def add_explained(self, index: int, explanation: Explanation, note: str = "") -> bool:
        """A frame explained live with the key's class (any class in "auto"): its probability and mask, provisional
        until the pass computes the frame (the evidence comes later); `note`: how the live view explained it
        otherwise than the export ("" when it did not). True when the timeline changed."""
        key = self.key
        if key is None or explanation.fill != key.fill or not 0 <= index < len(self.rows):
            return False
        if key.target != AUTO and explanation.target != key.target:
            return False
        if note:
            self.shown_otherwise[index] = note
        else:
            self.shown_otherwise.pop(index, None)
        if index in self.final:
            return False
        self.class_name = explanation.target_name
        self.rows[index] = live_record(index, self.fps, explanation)
        return True

    def add_evidence(self, index: int | None, target: int, probabilities: dict[str, float]) -> bool:
        """The live evidence check of frame `index` (for `target`): completes the provisional row of its
        explanation."""
        if self.key is None or index is None or not 0 <= index < len(self.rows) or index in self.final:
            return False
        row = self.rows[index]
        if row is None or row.class_index != target:
            return False
        self.rows[index] = replace(
            row,
            p_frame=probabilities["frame"],
            p_preserved=probabilities["preserved"],
            p_destroyed=probabilities["destroyed"],
        )
        return True

    def add_record(self, key: TimelineKey, record: FrameRecord) -> bool:
        """A row from the background pass for `key` (dropped when the timeline follows another key): it replaces the
        live view's, and is never replaced itself."""
        if key != self.key or not 0 <= record.frame < len(self.rows) or record.frame in self.final:
            return False
        self.class_name = record.class_name
        self.rows[record.frame] = record
        self.final.add(record.frame)
        return True

    # -- reading ------------------------------------------------------------------------------------------------
    def complete_frames(self) -> frozenset[int]:
        """The frames whose row the pass computed."""
        return frozenset(self.final)

    def filled(self) -> int:
        """Frames with a row (the pass's or, provisional, the live view's)."""
        return sum(row is not None for row in self.rows)

    def series(self, name: str) -> np.ndarray:
        """One of SERIES, frame by frame, float64; NaN where it is not known yet."""
        if name not in SERIES:
            raise ValueError(f"series must be one of {SERIES}, not {name!r}")
        values = [getattr(row, name) if row is not None else None for row in self.rows]
        return np.array([np.nan if value is None else value for value in values], dtype=np.float64)

    def records(self) -> list[FrameRecord]:
        """The pass's rows, in frame order (what the CSV holds)."""
        return [row for index, row in enumerate(self.rows) if row is not None and index in self.final]

    def write_csv(self, path: str | Path) -> int:
        """The pass's rows so far as engine.video.frametable's CSV (the columns and numbers of the export's table);
        returns how many."""
        with FrameTableWriter(path) as writer:
            for record in self.records():
                writer.write(record)
            return writer.rows


@dataclass
class _Kept:
    """What `EvidenceTimeline` keeps of a key it no longer follows."""

    rows: list[FrameRecord | None]
    final: set[int]
    shown_otherwise: dict[int, str]
    class_name: str
