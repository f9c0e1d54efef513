"""Export = what was shown (issue 25, item 3): a real clip played in the real window (offscreen, the bundled model on
ONNX Runtime, "auto" with the steady class and the mask average on, as by default), its evidence timeline saved as
CSV, then exported; the export's table must hold the CSV's class and numbers on every frame, and the live view's
class, probabilities and evidence checks on every frame it showed in order from the first. A frame then shown
otherwise (alone, after a jump) is named in the export's captions, with how.

Tolerance: both tables are written by engine.video.frametable with six significant digits, from the same
computation (one frame at a time, through the same steady run, on the same runner and inputs), so they must agree
to the table's own precision: one unit in the sixth significant digit. The live view's masks are made at the size
they are shown, so their area is not the table's (made at the frame's size): the mask statistics are compared
between the two tables only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest

from app.explaining.results import FrameResult
from engine.contract import Evidence
from tests.app.conftest import decode_all

WAIT_MS = 300_000  # the background pass runs at a low priority: a busy 2-core machine makes it wait
TABLE_PRECISION = 1e-5  # one unit in the sixth significant digit (frametable writes %.6g)
FRAMES = 90
NUMBERS = ("p_frame", "p_preserved", "p_destroyed", "mask_mean", "mask_share")


@pytest.fixture(scope="module")
def clip(data_root, tmp_path_factory) -> Path:
    """The first 90 frames of cup.mp4 (a hand holding a bottle: "auto" changes class on it) at half size."""
    path = tmp_path_factory.mktemp("clips") / "cup-short.mp4"
    capture = cv2.VideoCapture(str(data_root / "videos" / "cup.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
    for _ in range(FRAMES):
        ok, frame = capture.read()
        assert ok
        writer.write(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA))
    writer.release()
    capture.release()
    return path


def table(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return {int(row["frame"]): row for row in csv.DictReader(file)}


def same(a: float | str, b: float | str) -> bool:
    return float(a) == pytest.approx(float(b), rel=TABLE_PRECISION, abs=TABLE_PRECISION * 1e-3)


def test_the_export_holds_the_class_and_numbers_the_app_showed_and_saved_on_every_frame(
    qtbot, make_window, clip, tmp_path
):
    window = make_window(str(clip), realtime=False, backend="onnxruntime", model=None, evidence=True, loop=False)
    shown: dict[int, FrameResult] = {}  # played in order from the first frame: as the export explains them
    checked: dict[int, Evidence] = {}  # the live evidence checks
    window.result_shown.connect(
        lambda result: (
            shown.__setitem__(result.frame_index, result)
            if result.played is not None and result.played.as_exported() and result.explanation is not None
            else None
        )
    )
    window.worker.evidence_ready.connect(lambda evidence: checked.__setitem__(evidence.frame_index, evidence))
    keeper = window.timeline_keeper
    timeline = keeper.timeline
    qtbot.waitUntil(lambda: window.state.frame_index == FRAMES - 1 and not window.state.playing, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: timeline.frame_count == FRAMES and len(timeline.final) == FRAMES, timeout=WAIT_MS)
    saved = keeper.save_csv(tmp_path / "app.csv")
    assert saved is not None
    played_checks = dict(checked)  # the checks of the frames played (not of the one about to be explained alone)
    window.seek(40)  # a jump while paused: frame 40 is explained alone, not averaged with the frames before it
    qtbot.waitUntil(lambda: window.current_result.frame_index == 40, timeout=WAIT_MS)
    assert not window.current_result.played.as_exported()
    job = window.exporter.export(tmp_path / "export.mp4")
    assert job is not None
    qtbot.waitUntil(lambda: job.isFinished() and job.outcome is not None, timeout=WAIT_MS)
    assert job.outcome.complete and job.outcome.frames == FRAMES
    assert len(decode_all(job.outcome.output)) == FRAMES
    # the caption of frame 40 says how the app showed it; every other frame was shown as exported
    assert list(job.request.notes) == [40] and "explained alone" in job.request.notes[40]

    app, export = table(saved), table(job.outcome.output.with_suffix(".csv"))
    assert sorted(app) == sorted(export) == list(range(FRAMES))
    classes = {row["class_index"] for row in export.values()}
    assert len(classes) > 1, "the class never changed on this clip: the steady class is not exercised"
    for index in range(FRAMES):
        assert (app[index]["class_index"], app[index]["class_name"]) == (
            export[index]["class_index"],
            export[index]["class_name"],
        ), index
        for name in NUMBERS:
            assert same(app[index][name], export[index][name]), (index, name)

    assert len(shown) > FRAMES // 2  # (the window showed most frames; the rest were explained and replaced)
    for index, result in shown.items():
        explanation, row = result.explanation, export[index]
        assert (explanation.target, explanation.target_name) == (int(row["class_index"]), row["class_name"]), index
        assert same(explanation.target_probability, row["p_frame"]), index
    live_checks = [index for index in played_checks if index in shown]
    assert live_checks, "no live evidence check came for a frame shown in order"
    for index in live_checks:
        evidence, row = played_checks[index], export[index]
        assert evidence.target == int(row["class_index"])
        for name in ("frame", "preserved", "destroyed"):
            assert same(evidence.probabilities[name], row[f"p_{name}"]), (index, name)
