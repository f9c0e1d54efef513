"""Issue 14, point 1: the bugs a new user met, each on the real window (offscreen) with a real video file.

1. held arrow keys step from the frame last asked for; Home / End;
2. the shortcuts work wherever focus is (after the class search too); a click on the video takes focus;
3. a backend or a remembered model that fails does not stick; the Backend menu says what can run here;
4. a class restored from the last session says so, and so does a class the black box barely sees;
5. a note stays readable; latency is not counted while paused; a click on the slider's track goes there.
"""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt
from PyQt6.QtWidgets import QApplication, QMenu

from app.explaining.worker import PipelineWorker
from app.settings import load_state, set_snapshot_folder
from app.state import AppState
from app.window import MainWindow
from engine.contract import AUTO
from engine.explainer import quick_availability

WAIT_MS = 60_000
MINIVAN = 656


def on_frame(window: MainWindow, index: int, explained: bool = True) -> bool:
    result = window.current_result
    return (
        result is not None
        and result.frame_index == index
        and (result.explanation is not None or not explained)
        and window.player.requested is None
    )


def active(qtbot, window: MainWindow) -> None:
    """Key presses reach a window only when it is the active one, as on a desktop."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def paused_on(qtbot, window: MainWindow, index: int) -> None:
    """Once the video has opened (it starts playing), paused on frame `index`, explained."""
    qtbot.waitUntil(lambda: window.state.frame_count == 40 and window.current_result is not None, timeout=WAIT_MS)
    window.state.update(playing=False)
    window.player.slider.setValue(index)
    qtbot.waitUntil(lambda: on_frame(window, index), timeout=WAIT_MS)


def press(qtbot, key: Qt.Key, times: int = 1, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Key presses as the keyboard sends them: to the widget that has focus."""
    for _ in range(times):
        target = QApplication.focusWidget()
        assert target is not None
        qtbot.keyClick(target, key, modifier)


def latency_text(window: MainWindow) -> str:
    """What the status bar says about latency now: "latency 93 ms " (without the engine's own time, which varies)."""
    window._update_rates()
    return window.status.latency_label.text().split("(")[0]


def restored_window(qtbot, store: QSettings, source: str, **state_values) -> MainWindow:
    """A window started as the app starts: the remembered settings first (from `store`)."""
    state = AppState(evidence=False)
    load_state(store, state)
    state.update(**state_values)
    window = MainWindow(state, store, PipelineWorker())
    qtbot.addWidget(window)
    window.show()
    window.start(source)
    return window


def closed(window: MainWindow) -> None:
    window.close()
    assert window.worker.isFinished()


# -- 1 and 2: keys -------------------------------------------------------------------------------------------------
def test_held_arrow_keys_reach_the_frame_asked_for(qtbot, make_window, video_file):
    """20 presses faster than frames are explained (key repeat) land exactly 20 frames on, and back."""
    window = make_window(str(video_file))
    active(qtbot, window)
    paused_on(qtbot, window, 5)
    window.grid.setFocus()
    press(qtbot, Qt.Key.Key_Right, 20)  # no wait between presses: each explanation takes longer than a press
    qtbot.waitUntil(lambda: on_frame(window, 25), timeout=WAIT_MS)
    assert window.player.slider.value() == 25 and not window.state.playing
    press(qtbot, Qt.Key.Key_Left, 20)
    qtbot.waitUntil(lambda: on_frame(window, 5), timeout=WAIT_MS)
    press(qtbot, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: on_frame(window, 39), timeout=WAIT_MS)
    press(qtbot, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: on_frame(window, 0), timeout=WAIT_MS)
    press(qtbot, Qt.Key.Key_Left, 3)  # looping: round from the start to the end
    qtbot.waitUntil(lambda: on_frame(window, 37), timeout=WAIT_MS)


def test_shortcuts_work_after_the_class_search_and_focus_goes_back_to_the_views(
    qtbot, make_window, video_file, tmp_path
):
    window = make_window(str(video_file))
    active(qtbot, window)
    paused_on(qtbot, window, 10)
    line_edit = window.class_picker.combo.lineEdit()
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClicks(line_edit, "tabby cat")  # a space typed into the search stays in the search
    assert line_edit.text() == "tabby cat" and not window.state.playing
    set_snapshot_folder(window.store, tmp_path / "quick")
    press(qtbot, Qt.Key.Key_S, modifier=Qt.KeyboardModifier.ControlModifier)  # Ctrl+S while typing: a snapshot
    assert len(list((tmp_path / "quick").glob("snapshot-*.png"))) == 1
    assert line_edit.text() == "tabby cat"
    qtbot.keyClick(line_edit, Qt.Key.Key_Return)
    assert window.state.target == 281
    assert QApplication.focusWidget() is window.grid, "focus stayed in the class search"

    press(qtbot, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: on_frame(window, 11), timeout=WAIT_MS)
    press(qtbot, Qt.Key.Key_Space)
    assert window.state.playing
    press(qtbot, Qt.Key.Key_Space)
    assert not window.state.playing

    line_edit.setFocus()  # focus in the search, nothing typed: the player's keys act on the player
    frame = window.state.frame_index
    press(qtbot, Qt.Key.Key_Left)
    assert window.player.requested == frame - 1
    qtbot.waitUntil(lambda: on_frame(window, frame - 1), timeout=WAIT_MS)
    assert window.class_picker.combo.currentText().startswith("tabby, tabby cat")

    qtbot.mouseClick(window.grid.views["overlay"], Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is window.grid, "a click on the video did not take focus"


# -- 3: failures that do not stick ---------------------------------------------------------------------------------
@pytest.mark.skipif(quick_availability("tensorrt")[0], reason="TensorRT runs here: nothing to fall back from")
def test_a_backend_that_cannot_run_falls_back_to_auto_and_is_not_remembered(
    qtbot, store, video_file, untrained_model_file
):
    store.setValue("backend", "tensorrt")  # chosen (or given with --backend) in an earlier session
    window = restored_window(qtbot, store, str(video_file), model_path=str(untrained_model_file))
    try:
        qtbot.waitUntil(
            lambda: any("tensorrt backend cannot run here" in t for t in window.status.recent), timeout=WAIT_MS
        )
        note = next(text for text in window.status.recent if "tensorrt backend cannot run here" in text)
        assert "Switched to the auto backend" in note and "Open model" not in note
        assert window.state.backend == "auto"
        assert QSettings(store.fileName(), QSettings.Format.IniFormat).value("backend") == "auto"  # saved at once
        assert window.problems == []  # nothing else went wrong
        qtbot.waitUntil(lambda: window.controller.model is not None, timeout=3 * WAIT_MS)  # explained on auto
        assert "untrained" in window.status.model_label.full_text()

        menus = {menu.title().replace("&", ""): menu for menu in window.menuBar().findChildren(QMenu)}
        menus["Backend"].aboutToShow.emit()
        entries = {action.text(): action for action in menus["Backend"].actions()}
        assert not entries["tensorrt"].isEnabled() and "cannot run here" in entries["tensorrt"].toolTip()
        assert entries["auto"].isEnabled() and entries["torch-cpu"].isEnabled()
    finally:
        closed(window)


def test_a_remembered_model_that_fails_gives_way_to_the_bundled_one(qtbot, store, video_file, tmp_path):
    store.setValue("model_path", str(tmp_path / "deleted-since.safetensors"))
    store.setValue("backend", "torch-cpu")
    window = restored_window(qtbot, store, str(video_file))
    try:
        qtbot.waitUntil(
            lambda: any("remembered from the last session" in t for t in window.status.recent), timeout=WAIT_MS
        )
        note = next(text for text in window.status.recent if "remembered from the last session" in text)
        assert "deleted-since.safetensors" in note and "bundled model" in note
        assert window.state.model_path is None
        assert QSettings(store.fileName(), QSettings.Format.IniFormat).value("model_path") == ""
    finally:
        closed(window)


# -- 4: a restored class, a class the black box barely sees -----------------------------------------------------
def test_a_class_restored_from_the_last_session_says_so(qtbot, store, video_file, untrained_model_file):
    store.setValue("target", MINIVAN)  # chosen on another video last time
    store.setValue("backend", "torch-cpu")
    window = restored_window(qtbot, store, str(video_file), model_path=str(untrained_model_file))
    try:
        picker = window.class_picker
        assert not picker.restored_label.isHidden()
        assert picker.restored_label.text().startswith("restored from last session: minivan")
        qtbot.waitUntil(lambda: window.current_result is not None and window.current_result.explanation is not None)
        explanation = window.current_result.explanation
        assert explanation.target == MINIVAN and explanation.target_probability < 0.01
        note = window.evidence.note_label.text()
        assert "restored from last session: minivan" in note
        assert f"barely sees 'minivan' here ({explanation.target_probability * 100:.1f}%)" in note
        assert not window.evidence.note_label.isHidden()

        window.state.update(target=AUTO)  # another choice: no longer the restored one
        assert picker.restored_label.isHidden()
        qtbot.waitUntil(lambda: window.current_result.explanation.target != MINIVAN, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window.evidence.note_label.isHidden(), timeout=WAIT_MS)
    finally:
        closed(window)


# -- 5: notes, latency, the slider ---------------------------------------------------------------------------------
def test_the_no_webcam_note_is_not_covered_by_the_loading_message(qtbot, make_window):
    from app.explaining.scheduler import AUTO_SOURCE

    window = make_window(AUTO_SOURCE)
    qtbot.waitUntil(lambda: window.state.source_label != "", timeout=WAIT_MS)
    if window.state.source_kind == "camera":
        pytest.skip("this machine has a webcam: no note to show")
    qtbot.waitUntil(lambda: any(text.endswith("(backend torch-cpu)...") for text in window.status.recent))
    assert window.status.currentMessage().startswith("No webcam"), window.status.currentMessage()


def test_latency_is_not_counted_while_paused_and_the_slider_goes_where_clicked(qtbot, make_window, video_file):
    window = make_window(str(video_file))
    qtbot.waitUntil(lambda: "ms" in latency_text(window), timeout=WAIT_MS)  # measured while playing
    paused_on(qtbot, window, 12)
    shown = latency_text(window)
    qtbot.wait(1500)  # paused: the frame on screen gets older
    window.state.update(opacity=0.2)  # the same frame explained again, with the time it was read long ago
    qtbot.waitUntil(lambda: window.current_result.explanation.opacity == 0.2, timeout=WAIT_MS)
    assert latency_text(window) == shown

    slider = window.player.slider
    handle_free = QPoint(int(slider.width() * 0.75), slider.height() // 2)
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=handle_free)
    # (within the handle's width of 75%; a page step from frame 12 would be 22)
    assert abs(slider.value() - round(0.75 * 39)) <= 4, slider.value()
    target = slider.value()
    qtbot.waitUntil(lambda: on_frame(window, target), timeout=WAIT_MS)
