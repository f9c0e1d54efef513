"""Evidence over time: the timeline's rows (app.timeline.rows), its background pass (app.timeline.whole_file_pass) on a
real model and a real video, and the timeline in the real window (offscreen) on the demo clip: its values are the
evidence of the frames explained (the live view's, provisional, then the pass's: every frame in order through the
steady run, as the export), a click seeks, a new class clears and refills it, and it saves one CSV row per frame.

The window runs the untrained test model on torch CPU (as the other window tests) with the evidence check on.
"""

from __future__ import annotations

import csv
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPoint, QPointF, QSettings, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from app.explaining.worker import PipelineWorker
from app.state import AppState
from app.timeline.rows import EvidenceTimeline, TimelineKey, is_complete
from app.timeline.whole_file_pass import ModelChoice, PassJob, TimelinePass
from app.widgets.timeline import CURVES, columns, runs
from app.window import MainWindow
from engine.contract import AUTO, Explanation
from engine.paths import DEMO_CLIP
from engine.runtime.temporal import Steadiness
from engine.video.frametable import COLUMNS, FrameRecord
from engine.video.sequence import SequenceExplainer
from tests.app.conftest import decode_all, write_video
from tests.app.test_window import pixels

WAIT_MS = 60_000
PASS_MS = 300_000  # the pass runs at a low priority: on a busy 2-core machine it waits for the CPU


# -- drawing helpers ------------------------------------------------------------------------------------------------
def test_columns_put_each_frame_in_its_cell_or_average_a_pixel_column():
    values = np.array([0.1, np.nan, 0.3, 0.5])
    x, y = columns(values, 8)  # the frames fit: one point per frame, at the centre of its 2-pixel cell
    assert x.tolist() == [1.0, 3.0, 5.0, 7.0]
    assert np.array_equal(y, values, equal_nan=True)
    x, y = columns(np.array([0.2, 0.4, np.nan, np.nan, 1.0, np.nan]), 3)  # two frames a column: their known mean
    assert x.tolist() == [0.5, 1.5, 2.5]
    assert y[0] == pytest.approx(0.3) and np.isnan(y[1]) and y[2] == pytest.approx(1.0)
    assert runs(np.array([np.nan, 1.0, 2.0, np.nan, 3.0])) == [slice(1, 3), slice(4, 5)]


# -- the background pass, headless ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pass_model(untrained_model_file) -> ModelChoice:
    return ModelChoice(str(untrained_model_file), "torch-cpu")


def in_order(explainer, frames: list[np.ndarray], target: int, steadiness: Steadiness) -> list[Explanation]:
    """The frames explained one at a time in order from the first, through the steady run (as the export does)."""
    sequence = SequenceExplainer(explainer, target, steadiness, evidence=True)
    return [sequence.explain([frame])[0] for frame in frames]


def test_the_pass_explains_every_frame_in_order_and_rows_only_those_not_there_yet(video_file, pass_model):
    from engine.api import Explainer

    records: dict[int, FrameRecord] = {}
    done: list[int] = []
    explainer_pass = TimelinePass(
        lambda key, record: records.__setitem__(record.frame, record), lambda k, n: done.append(n)
    )
    try:
        key = ("clip", 3)
        explainer_pass.start(PassJob(key, str(video_file), 3, "grey", 25.0, pass_model, frozenset({0, 5, 6})))
        assert explainer_pass.idle(timeout=WAIT_MS / 1000)
    finally:
        explainer_pass.close()
    assert done == [40]
    assert sorted(records) == [index for index in range(40) if index not in (0, 5, 6)]
    frames = decode_all(video_file)
    with Explainer(pass_model.path, "torch-cpu", fill="grey") as explainer:
        # frames 0, 5 and 6 had rows: explained all the same, for the average of the frames after them
        expected = in_order(explainer, frames, 3, Steadiness())
        for index in (1, 7, 39):
            row = records[index]
            assert (row.frame, row.class_index, row.time_s) == (index, 3, index / 25.0)
            assert row == FrameRecord.of(index, 25.0, expected[index])  # the same computation, the same numbers


def test_a_paused_pass_explains_nothing_and_a_new_job_replaces_the_old(video_file, pass_model):
    records: list[tuple[object, int]] = []
    explainer_pass = TimelinePass(lambda key, record: records.append((key, record.frame)))
    try:
        explainer_pass.set_paused(True)
        explainer_pass.start(PassJob("first", str(video_file), 1, "blur", 25.0, pass_model))
        assert not explainer_pass.idle(timeout=1.0)  # the job waits
        assert records == [] and explainer_pass.explained == 0
        explainer_pass.start(PassJob("second", str(video_file), 2, "blur", 25.0, pass_model, frozenset(range(30))))
        explainer_pass.set_paused(False)
        assert explainer_pass.idle(timeout=WAIT_MS / 1000)
    finally:
        explainer_pass.close()
    assert records == [("second", index) for index in range(30, 40)]


def test_an_allowance_counts_every_frame_the_pass_explains_rows_there_already_too(video_file, pass_model):
    records: list[int] = []
    explainer_pass = TimelinePass(lambda key, record: records.append(record.frame))
    there = frozenset(range(2, 30))  # rows the pass computed before (kept for this key)
    try:
        explainer_pass.allow(0)  # playing: nothing until the live view has shown enough frames
        explainer_pass.start(PassJob("clip", str(video_file), 1, "blur", 25.0, pass_model, there))
        assert not explainer_pass.idle(timeout=1.0) and records == []
        explainer_pass.set_paused(True)
        for _ in range(3):
            explainer_pass.grant()  # no more than two saved up
        explainer_pass.set_paused(False)
        deadline = time.monotonic() + WAIT_MS / 1000
        while len(records) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not explainer_pass.idle(timeout=1.0)  # it waits for more
        assert records == [0, 1] and explainer_pass.explained == 2
        explainer_pass.allow(None)  # paused: as many as it can
        assert explainer_pass.idle(timeout=WAIT_MS / 1000)
    finally:
        explainer_pass.close()
    # the rows there already are explained again (each frame's steady run needs the one before), without a row
    assert records == [0, 1, *range(30, 40)] and explainer_pass.explained == 40


# -- the timeline in the window -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def window(qapp, untrained_model_file, tmp_path_factory):
    store = QSettings(str(tmp_path_factory.mktemp("settings") / "timeline.ini"), QSettings.Format.IniFormat)
    state = AppState(model_path=str(untrained_model_file), backend="torch-cpu", evidence=True)
    window = MainWindow(state, store, PipelineWorker(realtime=True))
    window.show()
    window.start(str(DEMO_CLIP))
    yield window
    window.close()
    assert window.worker.isFinished()
    assert window.timeline_keeper.explainer_pass is None, "the background pass outlived its window"


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    return decode_all(DEMO_CLIP)


def on_screen(window: MainWindow, index: int) -> bool:
    result = window.current_result
    return result is not None and result.explanation is not None and result.frame_index == index


def pause_on(qtbot, window: MainWindow, index: int) -> None:
    """Pause on frame `index` (once the clip is open and explained: opening a clip plays it)."""
    qtbot.waitUntil(
        lambda: window.current_result is not None and window.current_result.explanation is not None, timeout=WAIT_MS
    )
    window.state.update(playing=False)
    window.player.slider.setValue(index)
    qtbot.waitUntil(lambda: on_screen(window, index), timeout=WAIT_MS)


def pass_finished(window: MainWindow) -> bool:
    timeline = window.timeline_keeper.timeline
    return timeline.frame_count > 0 and len(timeline.complete_frames()) == timeline.frame_count


def first_frames_complete(window: MainWindow, count: int) -> bool:
    """The background pass goes through the file from the start: its first `count` rows are there."""
    timeline = window.timeline_keeper.timeline
    return timeline.frame_count >= count and all(index in timeline.final for index in range(count))


def assert_row_is_the_engines(row: FrameRecord, explanation: Explanation) -> None:
    """A row of the timeline holds the numbers the engine computes for the frame and the class."""
    assert row.class_index == explanation.target
    for key in ("frame", "preserved", "destroyed"):
        assert getattr(row, f"p_{key}") == pytest.approx(explanation.probabilities[key], abs=1e-5), key
    assert row.mask_mean == pytest.approx(float(explanation.mask.mean()), abs=1e-5)


def test_the_timeline_shows_the_evidence_of_the_frames_explained_until_the_pass_computes_them(qtbot, window):
    pause_on(qtbot, window, 300)
    generation = window.controller.generation
    qtbot.waitUntil(
        lambda: (
            window.latest_evidence is not None
            and window.latest_evidence.frame_index == 300
            and window.latest_evidence.tag == generation
        ),
        timeout=WAIT_MS,
    )
    explanation, evidence = window.current_result.explanation, window.latest_evidence
    timeline = window.timeline_keeper.timeline
    assert timeline.key is not None and timeline.key.target == AUTO  # the class each frame is explained for
    assert window.timeline.isVisible() and timeline.frame_count == window.state.frame_count
    # the pass goes from frame 0 and waits while frames are shown: it cannot have reached frame 300 yet
    assert 300 not in timeline.final
    row = timeline.rows[300]  # the live view's row, provisional
    assert is_complete(row) and row.class_index == explanation.target and row.class_name == explanation.target_name
    assert row.p_frame == pytest.approx(explanation.target_probability, abs=1e-5)
    assert row.p_preserved == pytest.approx(evidence.probabilities["preserved"], abs=1e-5)
    assert row.p_destroyed == pytest.approx(evidence.probabilities["destroyed"], abs=1e-5)
    assert row.mask_mean == pytest.approx(float(explanation.mask.mean()), abs=0.01)  # the live mask is view-sized
    assert timeline.series("p_preserved")[300] == pytest.approx(row.p_preserved)
    assert "auto" in window.timeline.header_text() and "1 as shown" not in window.timeline.header_text()
    # a jump: explained alone, which the export's caption will say (the export averages it with the frames before)
    assert "alone" in timeline.shown_otherwise[300] and "alone" in window.timeline_keeper.shown_otherwise()[300]
    assert "Not as exported" in window.evidence.age_label.text()


def test_a_click_on_the_timeline_seeks_to_the_frame_under_it(qtbot, window):
    pause_on(qtbot, window, 30)
    view = window.timeline
    x = round(view.x_of(321))
    assert view.frame_at(x) == 321
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(x, view.height() // 2))
    qtbot.waitUntil(lambda: on_screen(window, 321), timeout=WAIT_MS)
    assert window.player.slider.value() == 321 and not window.state.playing

    def mouse(kind: QEvent.Type, frame: int, buttons: Qt.MouseButton) -> None:
        position = QPointF(view.x_of(frame), view.height() / 2)
        event = QMouseEvent(
            kind,
            position,
            view.mapToGlobal(position),
            Qt.MouseButton.LeftButton,
            buttons,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(view, event)

    mouse(QEvent.Type.MouseButtonPress, 100, Qt.MouseButton.LeftButton)  # a drag
    for frame in (120, 150, 177):
        mouse(QEvent.Type.MouseMove, frame, Qt.MouseButton.LeftButton)
    mouse(QEvent.Type.MouseButtonRelease, 177, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: on_screen(window, 177), timeout=WAIT_MS)
    assert window.player.slider.value() == 177


def test_the_background_pass_fills_in_the_frames_not_shown(qtbot, window, demo_frames):
    pause_on(qtbot, window, 60)
    qtbot.waitUntil(lambda: first_frames_complete(window, 12), timeout=PASS_MS)
    timeline = window.timeline_keeper.timeline
    explainer = window.worker.scheduler.explainer  # the live one, idle while paused
    expected = in_order(explainer, demo_frames[:12], AUTO, timeline.key.steadiness)
    for index in (0, 11):
        assert_row_is_the_engines(timeline.rows[index], expected[index])


def test_another_class_clears_the_timeline_and_the_pass_refills_it(qtbot, window, demo_frames):
    pause_on(qtbot, window, 60)
    timeline = window.timeline_keeper.timeline
    auto_key = timeline.key
    shown = window.current_result.explanation
    chosen = next(index for index, _, _ in shown.top5 if index != shown.target)
    window.state.update(target=chosen)
    assert timeline.key.target == chosen and timeline.filled() == 0  # cleared at once
    assert np.isnan(timeline.series("p_frame")).all()
    qtbot.waitUntil(
        lambda: on_screen(window, 60) and window.current_result.explanation.target == chosen, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: first_frames_complete(window, 8), timeout=PASS_MS)
    assert {row.class_index for row in timeline.records()} == {chosen}
    explainer = window.worker.scheduler.explainer
    assert_row_is_the_engines(
        timeline.rows[7], in_order(explainer, demo_frames[:8], chosen, timeline.key.steadiness)[7]
    )

    window.state.update(target=AUTO)  # back to auto: its rows were kept
    qtbot.waitUntil(lambda: timeline.key == auto_key, timeout=WAIT_MS)
    assert first_frames_complete(window, 12)


def test_the_timeline_follows_the_fill(qtbot, window):
    pause_on(qtbot, window, 10)
    key = window.timeline_keeper.timeline.key
    window.state.update(fill="black")
    assert window.timeline_keeper.timeline.key == replace(key, fill="black")
    window.state.update(fill="blur")
    assert window.timeline_keeper.timeline.key == key
    window.state.update(smooth_mask=False)  # the steadiness changes the numbers: another key
    assert window.timeline_keeper.timeline.key == replace(key, steadiness=Steadiness.from_switches(True, False))
    window.state.update(smooth_mask=True)
    assert window.timeline_keeper.timeline.key == key


def test_the_timeline_follows_the_aspect_and_keeps_a_regions_numbers_out(qtbot, window):
    pause_on(qtbot, window, 20)
    key = window.timeline_keeper.timeline.key
    window.state.update(aspect="pad")
    assert window.timeline_keeper.timeline.key == replace(key, aspect="pad")
    window.state.update(aspect="stretch")
    assert window.timeline_keeper.timeline.key == key
    window.state.update(region=(0, 0, 120, 90))  # a region is explained alone: its numbers are not the frame's
    try:
        qtbot.waitUntil(lambda: window.current_result.explanation.frame.shape[:2] == (90, 120), timeout=WAIT_MS)
        before = window.timeline_keeper.timeline.rows[20]
        window.timeline_keeper.on_result(window.current_result)
        assert window.timeline_keeper.timeline.rows[20] is before
    finally:
        window.state.update(region=None)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, demo_frames) -> Path:
    """The first 45 frames of the demo clip at half size: a whole pass over it is quick."""
    path = tmp_path_factory.mktemp("clips") / "box-short.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    for frame in demo_frames[:45]:
        writer.write(cv2.cvtColor(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_a_whole_pass_draws_the_curves_and_saves_one_csv_row_per_frame(qtbot, window, short_clip, tmp_path):
    window.open_source(str(short_clip))
    qtbot.waitUntil(lambda: window.state.source_label == "box-short.mp4", timeout=WAIT_MS)
    window.state.update(playing=False)
    qtbot.waitUntil(lambda: pass_finished(window), timeout=PASS_MS)
    timeline = window.timeline_keeper.timeline
    assert timeline.frame_count == window.state.frame_count == 45
    drawn = pixels(window.timeline)
    drawn = drawn.reshape(drawn.shape[0], -1, 3)
    for _, _, colour in CURVES:  # each curve is on screen
        assert (np.abs(drawn.astype(int) - [colour.red(), colour.green(), colour.blue()]).sum(axis=2) < 30).any()

    assert window.menu_actions["save_evidence"].text() == "Save e&vidence as CSV..."
    written = window.timeline_keeper.save_csv(tmp_path / "evidence.csv")
    assert written == tmp_path / "evidence.csv"
    with written.open(newline="", encoding="utf-8") as file:
        table = list(csv.reader(file))
    assert tuple(table[0]) == COLUMNS  # the columns `engine render` writes
    assert len(table) - 1 == 45
    assert [int(line[0]) for line in table[1:]] == list(range(45))
    assert [int(line[2]) for line in table[1:]] == [row.class_index for row in timeline.records()]
    assert float(table[21][COLUMNS.index("p_preserved")]) == pytest.approx(timeline.rows[20].p_preserved, rel=1e-5)
    assert "Saved the evidence of 45 frames" in window.status.last_message


def test_no_timeline_for_a_still_image(qtbot, window, tmp_path, demo_frames):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(demo_frames[5], cv2.COLOR_RGB2BGR))
    window.open_source(str(path))
    qtbot.waitUntil(lambda: window.state.source_kind == "image", timeout=WAIT_MS)
    assert not window.timeline.isVisible() and window.timeline_keeper.timeline.key is None
    assert window.timeline_keeper.save_csv(tmp_path / "none.csv") is None and not (tmp_path / "none.csv").exists()
    assert "Nothing to save yet" in window.problems[-1]


def test_with_live_evidence_off_the_csv_says_why_it_has_nothing_to_save(qtbot, window, tmp_path):
    """No background pass without the evidence check: the live view's provisional rows are not saved as if computed
    in order; one line says what would compute them."""
    clip = write_video(tmp_path / "evidence-off.mp4", 12)
    window.state.update(evidence=False)
    try:
        window.open_source(str(clip))
        qtbot.waitUntil(lambda: window.timeline_keeper.timeline.filled() > 0, timeout=WAIT_MS)
        assert window.timeline_keeper.timeline.records() == []
        assert window.timeline_keeper.save_csv(tmp_path / "off.csv") is None and not (tmp_path / "off.csv").exists()
        assert "No frame computed in order yet" in window.problems[-1] and "Live evidence on" in window.problems[-1]
    finally:
        window.state.update(evidence=True)


def explained(target: int, mask_value: float) -> Explanation:
    """A small explanation of class `target`, its mask `mask_value` everywhere (a live frame, as the rows see it)."""
    picture = np.zeros((4, 6, 3), np.uint8)
    return Explanation(
        picture, np.full((4, 6), mask_value, np.float32), picture, picture, picture, picture, target, "one", 0.5,
        None, [(target, "one", 0.5)], None, {}, np.zeros((2, 2), np.float32), np.zeros((8, 8, 3), np.uint8),
    )  # fmt: skip


def test_live_rows_stand_in_until_the_pass_s_rows_which_are_kept_per_key_and_never_replaced():
    timeline = EvidenceTimeline()
    first, second = TimelineKey("a.mp4", 1, "blur", 1), TimelineKey("a.mp4", 2, "blur", 1)
    timeline.select(first, 3, 10.0)
    assert timeline.add_explained(1, explained(1, 0.3), "explained alone")  # the live view's, provisional
    assert not timeline.add_explained(2, explained(7, 0.3))  # another class than the key's
    assert timeline.add_evidence(1, 1, {"frame": 0.5, "preserved": 0.4, "destroyed": 0.1})
    assert is_complete(timeline.rows[1]) and timeline.complete_frames() == frozenset()
    assert timeline.records() == [] and timeline.shown_otherwise == {1: "explained alone"}
    record = FrameRecord(1, 0.1, 1, "one", 0.5, 0.6, 0.1, 0.2, 0.2, None, None, None, None)
    assert timeline.add_record(first, record) and not timeline.add_record(second, record)
    assert timeline.rows[1] == record and timeline.records() == [record] and timeline.complete_frames() == {1}
    assert not timeline.add_explained(1, explained(1, 0.9))  # the pass's row stays (the note follows the live view)
    assert not timeline.add_evidence(1, 1, {"frame": 0.1, "preserved": 0.2, "destroyed": 0.3})
    assert not timeline.add_evidence(0, 1, {"frame": 0.1, "preserved": 0.2, "destroyed": 0.3})  # no row to complete
    assert timeline.rows[1] == record and timeline.shown_otherwise == {}
    timeline.select(second, 3, 10.0)
    assert timeline.filled() == 0 and timeline.key == second
    timeline.select(first, 3, 10.0)
    assert timeline.rows[1] == record and timeline.final == {1}
    assert not timeline.add_record(
        first, FrameRecord(1, 0.1, 1, "one", 0.9, 0.9, 0.9, 0.9, 0.9, None, None, None, None)
    )
    assert timeline.rows[1] == record
    auto = TimelineKey("a.mp4", AUTO, "blur", 1)  # "auto": rows of whichever class each frame is explained for
    timeline.select(auto, 3, 10.0)
    assert timeline.add_explained(0, explained(1, 0.3)) and timeline.add_explained(2, explained(7, 0.3))
    timeline.forget()
    assert timeline.key is None and timeline.frame_count == 0
