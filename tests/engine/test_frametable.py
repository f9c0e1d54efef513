"""The per-frame table (engine.video.frametable): one row per explained frame, written as it goes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from engine.errors import VideoError
from engine.video.frametable import COLUMNS, FrameRecord, FrameTableWriter
from tests.engine.test_views import explanation


def rows_of(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_a_record_holds_the_frame_s_class_evidence_mask_and_box() -> None:
    source = explanation(probabilities={"frame": 0.5, "preserved": 0.25, "destroyed": 0.125})
    source.mask[:30, :] = 0.5  # a quarter of the rows at the threshold or above, the rest 0
    source.mask[:30, :40] = 1.0
    record = FrameRecord.of(12, 25.0, source)
    assert (record.frame, record.time_s, record.class_index, record.class_name) == (12, 0.48, 281, "tabby")
    assert (record.p_frame, record.p_preserved, record.p_destroyed) == (0.5, 0.25, 0.125)
    assert record.mask_mean == pytest.approx((30 * 120 * 0.5 + 30 * 40 * 1.0) / (120 * 160))
    assert record.mask_share == pytest.approx(0.25)
    assert (record.box_x0, record.box_y0, record.box_x1, record.box_y1) == (40, 30, 100, 90)  # the explanation's


def test_rows_are_written_at_once_and_none_is_an_empty_cell(tmp_path) -> None:
    path = tmp_path / "sub" / "table.csv"
    with FrameTableWriter(path) as table:
        table.write(FrameRecord.of(0, 10.0, explanation(box=None)))
        rows = rows_of(path)  # readable while the writer is open: an interrupted render keeps its rows
        assert len(rows) == 1 and tuple(rows[0]) == COLUMNS
        assert rows[0]["p_frame"] == "" and rows[0]["box_x0"] == "" and rows[0]["mask_share"] == "0"
        name_with_commas = explanation()
        name_with_commas.target_name = "crate, box"
        table.write(FrameRecord.of(1, 10.0, name_with_commas))
    rows = rows_of(path)
    assert [row["frame"] for row in rows] == ["0", "1"] and rows[1]["class_name"] == "crate, box"
    assert float(rows[1]["time_s"]) == 0.1 and np.isclose(float(rows[1]["mask_mean"]), 0.0)
    with pytest.raises(ValueError, match="closed"):
        table.write(FrameRecord.of(2, 10.0, explanation()))


def test_a_table_that_cannot_be_written_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(VideoError, match="cannot write the frame table"):
        FrameTableWriter(tmp_path)
