"""What the window says never overlaps: long notes in the status bar are cut to their room (whole in the tooltip and
in Help > Messages), the numbers keep theirs, the evidence numbers stand beside their bars; Save dialogs open in a
folder that can be written to. Real widgets, offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtWidgets import QFileDialog, QMainWindow

from app import settings
from app.explaining.results import WorkerStats
from app.widgets.evidence import EvidencePanel
from app.widgets.status_bar import StatusBar

WAIT_MS = 60_000
LONG_NOTE = (
    "The tensorrt backend cannot run here: TensorRT is not installed (pip install tensorrt). Switched to the auto "
    "backend (remembered for next time); File \u203a Backend shows what can run here, or install TensorRT on a "
    "machine with an NVIDIA GPU."
)


@pytest.fixture
def bar_in_window(qtbot):
    window = QMainWindow()
    bar = StatusBar()
    window.setStatusBar(bar)
    window.resize(900, 300)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window, bar


def test_a_long_note_is_cut_to_its_room_and_never_runs_under_the_numbers(qtbot, bar_in_window):
    window, bar = bar_in_window
    bar.show_model("lite0-default (efficientnet_lite0)", "onnxruntime", "the CPU runtime")
    bar.show_rates(38.5, WorkerStats(explained_fps=39.0, model_ms=21.0, dropped=12345), 48.0)
    bar.show_note(LONG_NOTE)
    numbers = (bar.fps_label, bar.latency_label, bar.dropped_label)

    def whole(label) -> bool:
        return label.width() >= label.fontMetrics().horizontalAdvance(label.text())

    qtbot.waitUntil(lambda: all(whole(label) for label in numbers))  # once laid out (the next pass of the event loop)
    message = bar.message_label
    assert message.shown_text().endswith("\u2026") and LONG_NOTE.startswith(message.shown_text()[:-1])
    assert message.toolTip() == LONG_NOTE and bar.currentMessage() == LONG_NOTE
    right_edge = message.geometry().right()
    for label in (bar.model_label, bar.backend_label, *numbers):
        assert label.geometry().left() > right_edge, label.text()  # nothing drawn over another
    assert bar.dropped_label.text() == "dropped 12345" and "onnxruntime" in bar.backend_label.full_text()
    minimum = window.minimumSizeHint().width()
    bar.show_rates(888.8, WorkerStats(explained_fps=888.8, model_ms=8888.0, dropped=8888888), 88888.0)
    qtbot.waitUntil(lambda: all(whole(label) for label in numbers))
    assert window.minimumSizeHint().width() == minimum  # the numbers' room does not change with them
    narrow = len(message.shown_text())
    window.resize(1500, 300)  # more room: more of the note
    qtbot.waitUntil(lambda: len(message.shown_text()) > narrow)
    assert LONG_NOTE.startswith(message.shown_text().rstrip("\u2026"))


def test_an_error_is_red_and_a_passing_message_does_not_cover_it(qtbot, bar_in_window):
    _, bar = bar_in_window
    bar.show_error("Cannot open this source: clip.mp4 does not exist")
    bar.show_info("Opened box.mp4")
    assert bar.currentMessage() == "Cannot open this source: clip.mp4 does not exist"
    assert "d03030" in bar.message_label.styleSheet()
    assert [line.split("  ", 1)[1] for line in bar.log][-2:] == [
        "Cannot open this source: clip.mp4 does not exist",
        "Opened box.mp4",
    ]


def test_help_messages_lists_every_message_whole(qtbot, make_window, video_file, tmp_path):
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    window.status.show_note(LONG_NOTE)
    assert window.menu_actions["messages"].text() == "&Messages"
    window.menu_actions["messages"].trigger()
    dialog = window.messages_dialog
    assert dialog is not None and dialog.isVisible()
    assert any(line.endswith(LONG_NOTE) for line in dialog.lines())
    window.status.show_info("one more while it is open")
    assert dialog.lines()[-1].endswith("one more while it is open")


def test_the_evidence_numbers_stand_beside_their_bars(qtbot):
    panel = EvidencePanel()
    qtbot.addWidget(panel)
    panel.resize(330, 200)
    panel.show()
    qtbot.waitExposed(panel)
    panel.show_evidence("Explaining: cockatoo (89, auto)", {"frame": 0.178, "preserved": 0.378, "destroyed": 0.005})
    assert panel.values() == {"frame": "0.178", "preserved": "0.378", "destroyed": "0.005"}
    for key, bar in panel.bars.items():
        number = panel.numbers[key]
        assert not bar.isTextVisible()
        assert not bar.geometry().intersects(number.geometry()), key
        assert number.width() >= number.fontMetrics().horizontalAdvance(number.text()), key


def test_save_dialogs_start_in_the_folder_saved_to_last_if_it_can_be_written_else_videos_or_home(store, tmp_path):
    home_or_videos = settings.save_folder(store)  # nothing saved yet
    assert settings.writable_folder(home_or_videos) or home_or_videos == Path.home()
    chosen = tmp_path / "exports"
    chosen.mkdir()
    settings.remember_save_folder(store, chosen / "clip-explained.mp4")
    assert settings.save_folder(store) == chosen
    chosen.rmdir()  # gone (an unplugged disk): not offered
    assert settings.save_folder(store) == home_or_videos
    (tmp_path / "exports").write_text("a file, not a folder")
    assert settings.save_folder(store) == home_or_videos


def test_the_export_dialog_opens_in_the_folder_saved_to_last_not_beside_the_video(
    qtbot, make_window, video_file, tmp_path, monkeypatch
):
    asked: list[str] = []

    def answer(_parent, _title, suggestion, _filter):
        asked.append(suggestion)
        return "", ""  # cancelled

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    window = make_window(str(video_file))
    qtbot.waitUntil(lambda: window.controller.model is not None, timeout=WAIT_MS)
    saved_to = tmp_path / "my-exports"
    saved_to.mkdir()
    settings.remember_save_folder(window.store, saved_to / "earlier.csv")
    window.exporter.export()
    assert asked == [str(saved_to / f"{video_file.stem}-explained.mp4")]
