"""The real window, offscreen, explaining a real video file with a real (untrained) model on torch CPU.

Building an Explainer is the slow step (seconds), so the player tests share one window (`player`); each test
puts it in the state it needs. Failure scenarios use a missing model file, which fails fast: the app must then
still play the video, without explanations.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QSettings, Qt, QTimer

from app.explaining.worker import PipelineWorker
from app.settings import set_snapshot_folder
from app.state import AppState
from app.window import MainWindow
from engine.contract import AUTO

WAIT_MS = 60_000  # a loaded 2-core machine can take seconds per frame on torch CPU


@pytest.fixture(scope="module")
def player(qapp, video_file, untrained_model_file, tmp_path_factory):
    store = QSettings(str(tmp_path_factory.mktemp("settings") / "player.ini"), QSettings.Format.IniFormat)
    state = AppState(model_path=str(untrained_model_file), backend="torch-cpu", evidence=False)
    window = MainWindow(state, store, PipelineWorker(realtime=True))
    window.show()
    window.start(str(video_file))
    yield window
    window.close()
    assert window.worker.isFinished()


def explained(window: MainWindow, frame_index: int | None = None) -> bool:
    result = window.current_result
    return (
        result is not None
        and result.explanation is not None
        and (frame_index is None or result.frame_index == frame_index)
    )


def pixels(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    buffer = image.constBits()
    buffer.setsize(image.sizeInBytes())
    return np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3].copy()


def pause_on(qtbot, window: MainWindow, frame_index: int) -> None:
    window.state.update(playing=False)
    window.player.slider.setValue(frame_index)
    qtbot.waitUntil(lambda: explained(window, frame_index), timeout=WAIT_MS)


# -- the player ---------------------------------------------------------------------------------------------------
def test_window_opens_on_a_video_and_plays(qtbot, player):
    shown: set[int] = set()
    player.result_shown.connect(lambda result: shown.add(result.frame_index))
    qtbot.waitUntil(lambda: len(shown) >= 3 and explained(player), timeout=WAIT_MS)
    assert player.state.playing and player.state.source_label == "clip.mp4"
    assert player.state.frame_count == 40
    assert "untrained" in player.status.model_label.full_text()
    assert "torch-cpu" in player.status.backend_label.full_text()
    player._update_rates()
    assert "fps" in player.status.fps_label.text() and "ms" in player.status.latency_label.text()


def test_scrubbing_shows_exactly_frame_k_and_its_explanation(qtbot, player, video_frames):
    pause_on(qtbot, player, 2)
    shown: list[int] = []
    player.result_shown.connect(lambda result: shown.append(result.frame_index))
    for index in (5, 9, 14, 21, 26, 27):  # a fast drag: only the newest position matters
        player.player.slider.setValue(index)
    qtbot.waitUntil(lambda: explained(player, 27), timeout=WAIT_MS)
    qtbot.wait(300)
    assert shown[-1] == 27, "a stale seek was served after the newest one"
    assert len(shown) < 6, "every intermediate scrub position was explained: stale seeks were not dropped"
    result = player.current_result
    assert np.array_equal(result.frame, video_frames[27])
    assert np.array_equal(result.explanation.frame, video_frames[27])
    assert player.grid.views["overlay"].array is not None
    assert np.array_equal(player.grid.views["overlay"].array, result.explanation.overlay)
    assert np.array_equal(player.grid.views["mask"].array, result.explanation.mask_image)
    assert player.player.slider.value() == 27 and "frame 27 / 39" in player.player.position_label.text()

    player.menu_actions["next"].trigger()  # Right arrow
    qtbot.waitUntil(lambda: explained(player, 28), timeout=WAIT_MS)
    assert np.array_equal(player.current_result.frame, video_frames[28])
    player.menu_actions["previous"].trigger()  # Left arrow
    qtbot.waitUntil(lambda: explained(player, 27), timeout=WAIT_MS)
    assert np.array_equal(player.current_result.frame, video_frames[27])


def test_typing_in_the_class_box_filters_and_selects_the_class(qtbot, player):
    pause_on(qtbot, player, 10)
    combo = player.class_picker.combo
    line_edit = combo.lineEdit()
    line_edit.clear()
    qtbot.keyClicks(line_edit, "tabby")
    completer = combo.completer()
    listed = [completer.completionModel().index(row, 0).data() for row in range(completer.completionCount())]
    assert listed and all("tabby" in text.lower() for text in listed)
    assert any(text.startswith("tabby, tabby cat") for text in listed)
    qtbot.keyClick(line_edit, Qt.Key.Key_Return)
    assert player.state.target == 281
    assert combo.currentText().startswith("tabby, tabby cat")
    qtbot.waitUntil(lambda: explained(player) and player.current_result.explanation.target == 281, timeout=WAIT_MS)
    assert "tabby" in player.evidence.target_label.text()

    top5 = player.current_result.explanation.top5
    qtbot.mouseClick(player.top5.buttons[1], Qt.MouseButton.LeftButton)  # the black box's second guess
    assert player.state.target == top5[1][0]
    qtbot.waitUntil(lambda: player.current_result.explanation.target == top5[1][0], timeout=WAIT_MS)

    combo.setCurrentIndex(0)  # back to "Auto (top prediction)"
    assert player.state.target == AUTO


def test_unknown_typed_class_says_so_and_keeps_the_target(qtbot, player):
    player.state.update(target=AUTO)
    line_edit = player.class_picker.combo.lineEdit()
    line_edit.clear()
    qtbot.keyClicks(line_edit, "flibbertigibbet")
    qtbot.keyClick(line_edit, Qt.Key.Key_Return)
    assert player.state.target == AUTO
    assert "No class matches 'flibbertigibbet'" in player.status.last_message


def test_switching_views_and_fill_changes_the_pixels_shown(qtbot, player):
    pause_on(qtbot, player, 12)
    player.state.update(target=AUTO, fill="blur", layout="grid")
    qtbot.waitUntil(lambda: explained(player, 12) and player.current_result.explanation is not None, timeout=WAIT_MS)
    preserved_view = player.grid.views["preserved"]
    blurred = pixels(preserved_view)
    with qtbot.waitSignal(player.result_shown, timeout=WAIT_MS):
        player.view_controls.fill_combo.setCurrentIndex(player.view_controls.fill_combo.findData("black"))
    assert player.state.fill == "black"
    qtbot.wait(50)
    assert not np.array_equal(pixels(preserved_view), blurred), "changing the fill did not change the picture"

    whole_grid = pixels(player.grid)
    player.view_controls.layout_combo.setCurrentIndex(player.view_controls.layout_combo.findData("mask"))
    assert player.state.layout == "mask"
    assert player.grid.views["mask"].isVisible() and not player.grid.views["overlay"].isVisible()
    qtbot.wait(50)
    assert not np.array_equal(pixels(player.grid), whole_grid), "switching to one large view changed nothing"
    player.menu_actions["layout_grid"].trigger()
    assert all(view.isVisible() for view in player.grid.views.values())


def test_opacity_changes_the_overlay(qtbot, player):
    pause_on(qtbot, player, 12)
    player.state.update(opacity=0.5)
    qtbot.waitUntil(lambda: explained(player, 12), timeout=WAIT_MS)
    before = player.current_result.explanation.overlay
    player.view_controls.opacity_slider.setValue(0.0)  # no heat at all: the overlay is the frame
    assert player.state.opacity == 0.0
    # (another result may come first, e.g. for a new view size: wait for the one made with the new opacity)
    qtbot.waitUntil(lambda: player.current_result.explanation.opacity == 0.0, timeout=WAIT_MS)
    after = player.current_result.explanation.overlay
    assert not np.array_equal(after, before)
    assert np.array_equal(player.grid.views["overlay"].array, after)
    player.state.update(opacity=0.5)


def test_live_evidence_shows_the_three_probabilities(qtbot, player):
    """The frame's probability on every frame; preserved / destroyed from the evidence stream, which checks the
    frame on screen a moment later and says which frame its numbers belong to."""
    pause_on(qtbot, player, 12)
    player.view_controls.evidence_check.setChecked(True)
    qtbot.waitUntil(
        lambda: player.latest_evidence is not None and player.latest_evidence.frame_index == 12, timeout=WAIT_MS
    )
    explanation = player.current_result.explanation
    assert explanation.probabilities is None  # the live mask never waits for the check
    evidence = player.latest_evidence
    assert evidence.target == explanation.target
    # the stream's numbers are the engine's own check of that explanation (the same graph on the same input)
    expected = player.worker.scheduler.explainer.evidence(explanation)
    assert evidence.probabilities == pytest.approx(expected, abs=1e-6)
    shown = player.evidence.values()
    for key in ("frame", "preserved", "destroyed"):
        assert shown[key] == f"{evidence.probabilities[key]:.3f}"
        assert player.evidence.bars[key].value() == round(evidence.probabilities[key] * 1000)
    assert "this frame (12)" in player.evidence.age_label.text()
    player.view_controls.evidence_check.setChecked(False)
    qtbot.waitUntil(lambda: set(player.evidence.values().values()) == {"off"}, timeout=WAIT_MS)


def test_box_option_draws_on_the_overlay(qtbot, player):
    pause_on(qtbot, player, 12)
    overlay = player.grid.views["overlay"]
    player.state.update(show_box=False)
    without = pixels(overlay)
    player.state.update(show_box=True)
    qtbot.wait(50)
    if player.current_result.explanation.box is None:  # an untrained mask may have nothing above 0.5
        assert np.array_equal(pixels(overlay), without)
    else:
        assert not np.array_equal(pixels(overlay), without)
    player.state.update(show_box=False)


def test_snapshot_writes_a_png(qtbot, player, tmp_path):
    pause_on(qtbot, player, 7)
    player.state.update(layout="grid")
    written = player.save_snapshot(tmp_path / "snap.png")
    image = cv2.imread(str(written))
    assert image is not None and image.shape == (2 * 64, 2 * 96, 3)  # the 2x2 grid at frame resolution

    set_snapshot_folder(player.store, tmp_path / "quick")
    player.menu_actions["snapshot"].trigger()  # Ctrl+S: a time-stamped file in the snapshot folder
    saved = list((tmp_path / "quick").glob("snapshot-*-frame7.png"))
    assert len(saved) == 1 and cv2.imread(str(saved[0])) is not None


def test_export_writes_the_explained_video(qtbot, player, tmp_path):
    from tests.app.conftest import decode_all

    player.state.update(layout="grid", playing=False)
    job = player.exporter.export(tmp_path / "explained.mp4")
    dialog = player.exporter.dialog
    assert job is not None and dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: job.isFinished() and not dialog.isVisible(), timeout=3 * WAIT_MS)
    assert job.outcome is not None and job.outcome.complete and job.outcome.frames == 40
    frames = decode_all(job.outcome.output)
    assert len(frames) == 40 and frames[0].shape == (64, 96, 3)  # the 2x2 grid of half-size views
    assert any("Exported 40 frames" in text for text in player.status.recent)


def test_cancelled_export_leaves_a_playable_part(qtbot, player, video_file, tmp_path):
    from tests.app.conftest import decode_all, write_video

    long_clip = write_video(tmp_path / "long.mp4", 400)  # long enough to cancel half-way on a fast machine
    player.open_source(str(long_clip))
    qtbot.waitUntil(lambda: player.state.source_label == "long.mp4", timeout=WAIT_MS)
    try:
        job = player.exporter.export(tmp_path / "part.mp4")
        dialog = player.exporter.dialog
        assert job is not None and dialog is not None
        qtbot.waitUntil(lambda: dialog.value() >= 1, timeout=3 * WAIT_MS)
        from PyQt6.QtWidgets import QPushButton

        qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)  # Cancel
        qtbot.waitUntil(job.isFinished, timeout=WAIT_MS)
        assert job.outcome is not None and not job.outcome.complete
        assert 0 < job.outcome.frames < 400
        assert len(decode_all(job.outcome.output)) == job.outcome.frames
        # (the job's `done` signal reaches the window a moment after the thread ends)
        qtbot.waitUntil(lambda: any("Export cancelled" in text for text in player.status.recent), timeout=WAIT_MS)
    finally:
        player.open_source(str(video_file))
        qtbot.waitUntil(lambda: player.state.source_label == "clip.mp4", timeout=WAIT_MS)


def test_corrupt_and_non_video_files_show_an_error_and_the_video_goes_on(qtbot, player, tmp_path, data_root):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes((data_root / "videos" / "realshort.mp4").read_bytes()[:20000])
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 40)
    for path, message in ((broken, "could not be opened as a video"), (text, "is a text file")):
        before = len(player.problems)
        player.open_source(str(path))
        qtbot.waitUntil(lambda: len(player.problems) > before, timeout=WAIT_MS)  # noqa: B023
        assert message in player.problems[-1]
        assert player._message_box is not None and player._message_box.isVisible()
        assert message in player.status.last_message
    player._message_box.close()
    assert player.state.source_label == "clip.mp4"
    player.state.update(playing=True)
    shown: set[int] = set()
    player.result_shown.connect(lambda result: shown.add(result.frame_index))
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=WAIT_MS)


def test_gui_thread_stays_responsive_while_the_worker_runs_flat_out(qtbot, player):
    player.worker.realtime = False  # no pacing: the pipeline is busy all the time
    player.state.update(playing=True)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    shown: list[int] = []
    player.result_shown.connect(lambda result: shown.append(result.frame_index))
    timer.start()
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=WAIT_MS)
    qtbot.wait(1500)
    timer.stop()
    player.worker.realtime = True
    gaps_ms = np.diff(ticks) * 1000.0
    # the model takes hundreds of ms per frame here: run in the GUI thread, it would show up in these gaps
    assert np.percentile(gaps_ms, 95) < 100, f"event loop delays (ms): {sorted(gaps_ms)[-10:]}"
    assert gaps_ms.max() < 1000


def test_without_loop_playback_stops_at_the_end_and_play_starts_again(qtbot, make_window, video_file, tmp_path):
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors", loop=False)
    qtbot.waitUntil(lambda: not window.state.playing and window.state.frame_index == 39, timeout=WAIT_MS)
    window.menu_actions["play"].trigger()  # Space
    qtbot.waitUntil(lambda: window.state.playing and (window.state.frame_index or 0) < 39, timeout=WAIT_MS)
    window.player.loop_box.setChecked(True)
    assert window.state.loop and window.worker.loop


# -- failures: a clear message, and the app stays usable ------------------------------------------------------------
def test_missing_webcam_says_so_and_a_file_still_opens(qtbot, make_window, video_file, tmp_path):
    window = make_window(9, model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: any("camera 9 did not open" in text for text in window.problems), timeout=WAIT_MS)
    window.open_source(str(video_file))
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
    assert window.state.source_label == "clip.mp4"


def test_camera_that_disappears_mid_stream_keeps_its_picture_and_comes_back(qtbot, make_window, video_file, tmp_path):
    from app.playback.sources import CameraSource
    from tests.app.conftest import write_video

    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
    device = write_video(tmp_path / "device.avi", 15, fourcc="MJPG")  # a "camera" that stops after 15 frames
    content = device.read_bytes()
    # the absent model's failure first (it loads in a thread of its own: it may come after the first picture)
    qtbot.waitUntil(lambda: any("absent.safetensors" in text for text in window.problems), timeout=WAIT_MS)
    problems_before = len(window.problems)
    camera = CameraSource(str(device), max_failures=3)
    device.unlink()  # unplugged: it stops after its 15 frames, and cannot be opened again for now
    window.open_source(camera)
    messages = window.status.log
    qtbot.waitUntil(lambda: any("stopped sending pictures" in line for line in messages), timeout=WAIT_MS)
    kept = window.current_result
    assert kept is not None and window.state.source_kind == "camera" and window.state.playing
    assert len(window.problems) == problems_before  # a note, not an error: the picture stays, it is tried again
    device.write_bytes(content)  # plugged in again
    qtbot.waitUntil(lambda: any("is back" in line for line in messages), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.current_result is not kept, timeout=WAIT_MS)
    window.open_source(str(video_file))
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4" and window.state.playing, timeout=WAIT_MS)


def test_model_for_another_black_box_is_refused_clearly(qtbot, make_window, video_file, untrained_model_file, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(untrained_model_file), framework="np") as handle:
        card = json.loads(handle.metadata()["card"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    card["blackbox"]["weights_sha256"] = "0" * 64  # trained against other weights of the black box
    foreign = tmp_path / "foreign.safetensors"
    save_file(tensors, str(foreign), metadata={"card": json.dumps(card)})

    window = make_window(str(video_file), model=foreign)
    qtbot.waitUntil(lambda: bool(window.problems), timeout=WAIT_MS)
    assert "black box" in window.problems[0] and "without explanations" in window.problems[0]
    assert window.status.model_label.full_text().startswith("model:")
    shown: set[int] = set()
    window.result_shown.connect(lambda result: shown.add(result.frame_index))
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=WAIT_MS)  # the video plays on, unexplained
    assert window.current_result.explanation is None
    assert window.grid.views["mask"].array is None and "no model" in window.grid.views["mask"].placeholder


def test_missing_default_model_says_how_to_get_one(qtbot, make_window, video_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCY_MODEL", str(tmp_path / "not-trained-yet.safetensors"))
    window = make_window(str(video_file), model=None)
    qtbot.waitUntil(lambda: bool(window.problems), timeout=WAIT_MS)
    assert "not-trained-yet" in window.problems[-1]
    assert "Open model" in window.problems[-1] and "trainer train" in window.problems[-1]
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)


def test_a_class_on_the_command_line_is_applied(qtbot, make_window, video_file, tmp_path):
    """An unknown --class never reaches the window: parse_args refuses it (tests/app/test_main.py)."""
    from app.main import _apply_arguments, parse_args

    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    _apply_arguments(parse_args(["--class", "tabby"]), window.state)
    assert window.state.target == 281
    _apply_arguments(parse_args(["--class", "auto"]), window.state)
    assert window.state.target == AUTO


def test_a_file_dropped_on_the_window_opens(qtbot, make_window, video_file, tmp_path):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((40, 60, 3), 200, np.uint8))
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(
        QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.state.source_label == "still.png", timeout=WAIT_MS)


def test_export_needs_a_video_and_a_model(qtbot, make_window, video_file, tmp_path):
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4" and bool(window.problems), timeout=WAIT_MS)
    assert window.exporter.export(tmp_path / "out.mp4") is None
    assert "No model is loaded" in window.problems[-1]
    window.state.update(source_kind="image")
    assert window.exporter.export(tmp_path / "out.mp4") is None
    assert "Open a video file first" in window.problems[-1]
    assert not (tmp_path / "out.mp4").exists()


def test_the_exact_frame_count_replaces_the_header_estimate(qtbot, make_window, data_root, tmp_path):
    window = make_window(str(data_root / "videos" / "box.mp4"), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.frame_count == 455, timeout=WAIT_MS)  # the header says 456
    window.state.update(playing=False)
    assert window.player.slider.maximum() == 454
    window.player.slider.setValue(454)
    qtbot.waitUntil(
        lambda: window.current_result is not None and window.current_result.frame_index == 454, timeout=WAIT_MS
    )
    assert "frame 454 / 454" in window.player.position_label.text()


def test_a_truncated_video_plays_and_says_once_that_it_ends_early(qtbot, make_window, data_root, tmp_path):
    source = data_root / "videos" / "box.mp4"
    truncated = tmp_path / "half.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])  # the first half of an mp4's bytes
    window = make_window(str(truncated), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: any("ends early" in text for text in window.status.recent), timeout=WAIT_MS)
    readable = window.state.frame_count
    assert readable is not None and 0 < readable < 455
    assert any(f"half.mp4 ends early: {readable} of the 456 frames" in text for text in window.status.recent)
    assert all("ends early" not in text for text in window.problems)  # a status message, not a dialog
    window.player.slider.setValue(readable - 2)  # on to the end, and round again
    window.state.update(playing=True)
    shown: list[int] = []
    window.result_shown.connect(lambda result: shown.append(result.frame_index))
    qtbot.waitUntil(lambda: 0 in shown and shown[-1] > 2, timeout=WAIT_MS)
    assert sum("ends early" in text for text in window.status.recent) == 1


def test_camera_and_backend_menus(qtbot, make_window, video_file, tmp_path):
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    from PyQt6.QtWidgets import QMenu

    menus = {menu.title().replace("&", ""): menu for menu in window.menuBar().findChildren(QMenu)}
    camera_menu = menus["Camera"]
    camera_menu.aboutToShow.emit()  # lists the cameras, as when the user opens the menu (tests/app/test_cameras.py)
    entries = [action.text() for action in camera_menu.actions()]
    assert entries[0] == "No camera found" or all(action.menu() is not None for action in camera_menu.actions())
    backend_menu = menus["Backend"]
    backend_menu.aboutToShow.emit()
    checked = [action.text() for action in backend_menu.actions() if action.isChecked()]
    assert checked == ["torch-cpu"]
    next(action for action in backend_menu.actions() if action.text() == "onnxruntime").trigger()
    assert window.state.backend == "onnxruntime"


def test_still_image_is_shown_once_and_not_played(qtbot, make_window, video_frames, tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(video_frames[5], cv2.COLOR_RGB2BGR))
    window = make_window(str(path), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
    assert window.state.source_kind == "image" and not window.state.playing
    assert np.array_equal(window.current_result.frame, video_frames[5])


def test_no_webcam_falls_back_to_the_demo_clip(qtbot, make_window, tmp_path):
    from app.explaining.scheduler import AUTO_SOURCE

    window = make_window(AUTO_SOURCE, model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label != "", timeout=WAIT_MS)
    if window.state.source_kind == "camera":  # a machine with a webcam opens it instead
        assert window.state.source_label == "camera 0"
    else:
        assert window.state.source_label == "box.mp4"
        assert any("No webcam" in text and "demo clip" in text for text in window.status.recent)


# -- settings and closing -----------------------------------------------------------------------------------------
def test_settings_are_remembered_in_the_given_file_only(qtbot, make_window, store, video_file, tmp_path):
    from app.settings import APPLICATION, ORGANIZATION, load_state

    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.last_file != "", timeout=WAIT_MS)
    window.state.update(target=281, layout="preserved", fill="grey", opacity=0.3, backend="onnxruntime")
    window.close()
    restored = AppState()
    assert load_state(store, restored) == []
    assert (restored.target, restored.layout, restored.fill, restored.opacity, restored.backend) == (
        281,
        "preserved",
        "grey",
        0.3,
        "onnxruntime",
    )
    assert restored.last_file == str(Path(video_file).resolve())
    assert str(tmp_path) in QSettings(ORGANIZATION, APPLICATION).fileName()  # the user's own file is untouched


def test_closing_the_window_stops_the_worker_and_every_reader_thread(qtbot, make_window, video_file, tmp_path):
    import threading

    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
    assert window.worker.isRunning()
    window.close()
    assert window.worker.isFinished()
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith(("capture-", "index-clip"))]
    assert leftovers == []
