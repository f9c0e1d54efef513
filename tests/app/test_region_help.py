"""The window's region mode, captions on snapshots, H.264 exports, recent files, drag and drop, and the help dialog:
real windows offscreen on real video files with the untrained test model (torch CPU)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication, QMenu, QPushButton

from app import recent
from app.export.snapshot import snapshot_image
from app.export.video import export_request
from app.region import frame_region
from tests.app.conftest import write_video

WAIT_MS = 60_000


def explained(window, frame_index: int | None = None) -> bool:
    result = window.current_result
    return (
        result is not None
        and result.explanation is not None
        and (frame_index is None or result.frame_index == frame_index)
    )


def pause_on(qtbot, window, frame_index: int) -> None:
    qtbot.waitUntil(lambda: explained(window), timeout=WAIT_MS)
    window.state.update(playing=False)
    window.seek(frame_index)
    qtbot.waitUntil(lambda: explained(window, frame_index), timeout=WAIT_MS)


def widget_point(view, x: float, y: float) -> QPoint:
    """Where pixel (x, y) of the picture shown by `view` lies in the widget."""
    target = view.image_rect()
    scale = target.width() / view.array.shape[1]
    return QPoint(round(target.x() + x * scale), round(target.y() + y * scale))


def drag(qtbot, view, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)


# -- region mode ------------------------------------------------------------------------------------------------
def test_a_drag_maps_to_the_frame_and_narrows_a_region() -> None:
    assert frame_region((10, 20, 60, 100), (384, 288), (768, 576), None) == (20, 40, 120, 200)
    assert frame_region((60, 100, 10, 20), (384, 288), (768, 576), None) == (20, 40, 120, 200)  # any corner order
    assert frame_region((-50, -50, 500, 500), (384, 288), (768, 576), None) == (0, 0, 768, 576)  # clipped
    assert frame_region((0, 0, 50, 50), (100, 100), (768, 576), (200, 100, 400, 300)) == (200, 100, 300, 200)
    assert frame_region((10, 10, 12, 80), (384, 288), (768, 576), None) is None  # 4 frame pixels wide: a click


@pytest.mark.parametrize("aspect", ["pad", "stretch"])
def test_dragging_a_rectangle_explains_that_region_and_esc_returns_to_the_whole_frame(
    qtbot, make_window, data_root, aspect
) -> None:
    clip = data_root / "videos" / "vtest.avi"  # 768x576: people and cars too small to explain in the whole frame
    window = make_window(str(clip), aspect=aspect, layout="grid")
    window.resize(1400, 900)
    pause_on(qtbot, window, 3)
    overlay = window.grid.views["overlay"]
    shown = overlay.array.shape  # the whole frame, at the size the view shows it
    assert shown[1] / shown[0] == pytest.approx(768 / 576, abs=0.01)
    # a tall rectangle over frame pixels (300, 120) .. (420, 420): 120 x 300
    scale = shown[1] / 768
    drag(
        qtbot, overlay, widget_point(overlay, 300 * scale, 120 * scale), widget_point(overlay, 420 * scale, 420 * scale)
    )
    qtbot.waitUntil(lambda: window.state.region is not None, timeout=WAIT_MS)
    x0, y0, x1, y1 = window.state.region
    assert (x0, y0, x1, y1) == pytest.approx((300, 120, 420, 420), abs=4)
    qtbot.waitUntil(
        lambda: explained(window) and window.current_result.explanation.frame.shape[:2] == (y1 - y0, x1 - x0),
        timeout=WAIT_MS,
    )
    explanation = window.current_result.explanation
    assert explanation.padded == (aspect == "pad")
    for name in ("overlay", "mask", "preserved", "destroyed"):
        picture = window.grid.views[name].array
        assert picture.shape[1] / picture.shape[0] == pytest.approx((x1 - x0) / (y1 - y0), abs=0.02), name
    assert any("Explaining the region" in text for text in window.status.recent)

    window.activateWindow()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.state.region is None, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: explained(window) and window.current_result.explanation.frame.shape[:2] == (576, 768),
        timeout=WAIT_MS,
    )
    assert window.grid.views["overlay"].array.shape == shown


# -- captions and exports ----------------------------------------------------------------------------------------
def test_the_caption_is_drawn_on_snapshots_unless_turned_off(qtbot, make_window, video_file, tmp_path) -> None:
    window = make_window(str(video_file), layout="grid")
    pause_on(qtbot, window, 5)
    assert window.state.caption  # on by default
    with_caption = cv2.imread(str(window.save_snapshot(tmp_path / "with.png")))
    window.menu_actions["caption"].trigger()
    assert not window.state.caption
    without = cv2.imread(str(window.save_snapshot(tmp_path / "without.png")))
    assert with_caption.shape == without.shape == (128, 192, 3)
    different_rows = np.flatnonzero(np.any(with_caption != without, axis=(1, 2)))
    assert different_rows.size > 0 and different_rows.min() >= 128 // 2  # along the bottom only
    # the caption carries the evidence numbers when they are known
    result = window.current_result
    checked = {"frame": result.explanation.target_probability, "preserved": 0.25, "destroyed": 0.75}
    numbers = snapshot_image(result.frame, result.explanation, "grid", caption=True, checked=checked)
    assert not np.array_equal(numbers, cv2.cvtColor(with_caption, cv2.COLOR_BGR2RGB))


def test_export_takes_the_box_and_caption_settings(qtbot, make_window, video_file, tmp_path) -> None:
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)
    window.state.update(show_box=True, caption=False)
    request = export_request(window.state, tmp_path / "out")
    assert request.box and not request.caption and request.output.suffix == ".mp4"
    window.state.update(show_box=False, caption=True)
    request = export_request(window.state, tmp_path / "out")
    assert not request.box and request.caption


def test_a_cancelled_export_is_a_playable_h264_file_of_the_frames_done(qtbot, make_window, tmp_path) -> None:
    long_clip = write_video(tmp_path / "long.mp4", 300)
    window = make_window(str(long_clip), layout="grid", show_box=True)
    qtbot.waitUntil(lambda: explained(window), timeout=WAIT_MS)
    job = window.exporter.export(tmp_path / "part.mp4")
    dialog = window.exporter.dialog
    assert job is not None and dialog is not None and job.request.caption and job.request.box
    qtbot.waitUntil(lambda: dialog.value() >= 2, timeout=3 * WAIT_MS)
    qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)  # Cancel
    qtbot.waitUntil(job.isFinished, timeout=WAIT_MS)
    outcome = job.outcome
    assert outcome is not None and not outcome.complete and 0 < outcome.frames < 300
    with av.open(str(outcome.output)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == outcome.frames and frames[0].shape == (64, 96, 3)


# -- recent files, drag and drop ---------------------------------------------------------------------------------
def test_recent_files_keep_eight_newest_first_and_drop_missing_ones(store, tmp_path) -> None:
    files = [tmp_path / f"clip{number}.mp4" for number in range(10)]
    for path in files:
        path.write_bytes(b"x")
        recent.remember(store, path)
    recent.remember(store, files[5])  # opened again: first, once
    listed = recent.recent_files(store)
    assert listed[0] == str(files[5].resolve()) and len(listed) == recent.MAX_RECENT
    assert listed.count(str(files[5].resolve())) == 1 and str(files[0].resolve()) not in listed
    files[9].unlink()
    notes: list[str] = []
    opened: list[str] = []
    menu = QMenu()
    recent.fill_menu(menu, store, opened.append, notes.append)
    names = [action.text() for action in menu.actions() if action.data()]
    assert len(names) == recent.MAX_RECENT - 1 and not any("clip9" in name for name in names)
    assert notes == ["Removed from Recent (no longer there): clip9.mp4"]
    assert str(files[9].resolve()) not in recent.recent_files(store)  # remembered as gone
    menu.actions()[0].trigger()
    assert opened == [str(files[5].resolve())]


def test_a_dropped_file_opens_and_joins_the_recent_files(qtbot, make_window, video_file, tmp_path) -> None:
    other = write_video(tmp_path / "dropped.mp4", 12)
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    position = QPointF(window.width() / 2, window.height() / 2)
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        position.toPoint(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()  # the window takes files
    drop = QDropEvent(position, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.state.source_label == "dropped.mp4", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: recent.recent_files(window.store)[:1] == [str(Path(other).resolve())], timeout=WAIT_MS)
    assert str(Path(video_file).resolve()) in recent.recent_files(window.store)
    recent_menu = window.menu_actions["recent"].menu()
    recent_menu.aboutToShow.emit()
    assert [action.text() for action in recent_menu.actions() if action.data()][:2] == ["&1 dropped.mp4", "&2 clip.mp4"]


# -- help ----------------------------------------------------------------------------------------------------------
def test_the_help_dialog_explains_the_views_with_the_numbers_of_the_frame_on_screen(
    qtbot, make_window, video_file
) -> None:
    window = make_window(str(video_file), evidence=True)
    pause_on(qtbot, window, 9)
    window.menu_actions["what"].trigger()
    dialog = window.help_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.numbers is not None and dialog.numbers.preserved is not None, timeout=WAIT_MS)
    explanation = window.current_result.explanation
    numbers = dialog.numbers
    text = dialog.text.text()
    assert numbers.class_name == explanation.target_name and numbers.frame == explanation.target_probability
    assert window.latest_evidence.probabilities["preserved"] == numbers.preserved
    for shown in (
        explanation.target_name,
        f"{numbers.frame:.3f}",
        f"{numbers.preserved:.3f}",
        f"{numbers.destroyed:.3f}",
    ):
        assert shown in text
    assert "smallest sufficient region" in text and "smallest destroying region" in text
    assert dialog.picture.pixmap() is not None and not dialog.picture.pixmap().isNull()


def test_aspect_and_caption_are_remembered_and_a_region_is_not(store) -> None:
    from app.settings import load_state, save_state
    from app.state import AppState

    state = AppState()
    assert state.aspect == "stretch" and state.caption and state.region is None  # the defaults
    state.update(aspect="pad", caption=False, region=(10, 20, 110, 220))
    save_state(store, state)
    again = AppState()
    assert load_state(store, again) == []
    assert again.aspect == "pad" and not again.caption and again.region is None
    store.setValue("aspect", "squash")
    assert load_state(store, AppState()) == ["aspect"]
    with pytest.raises(ValueError, match="region"):
        state.update(region=(50, 20, 10, 220))
