"""MainWindow: puts the widgets together, shows the worker's results, reports problems. The logic lives in
AppState, the Controller, the PipelineWorker and the widgets; menus are built in app/menus.py."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QHBoxLayout, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from app import extra_menus, menus, recent, settings, shortcuts
from app.controller import Controller
from app.explaining.mailbox import SourceSpec
from app.explaining.results import FrameResult, ModelInfo, SourceInfo, shown_evidence
from app.explaining.stats import LatencyMeter, LiveEdgeMeter, RateMeter
from app.explaining.worker import PipelineWorker
from app.export.recording import LiveRecording
from app.export.snapshot import snapshot_image, write_png
from app.export.video import Exporter
from app.region import frame_region, region_text
from app.state import AppState
from app.timeline.keeper import TimelineKeeper
from app.widgets.class_picker import ClassPicker, TopPredictions
from app.widgets.evidence import EvidencePanel, target_note
from app.widgets.help_dialog import FrameNumbers, HelpDialog
from app.widgets.messages_dialog import MessagesDialog
from app.widgets.player_bar import PlayerBar
from app.widgets.region_select import RegionSelector
from app.widgets.status_bar import StatusBar
from app.widgets.timeline import TimelineView
from app.widgets.view_controls import ViewControls
from app.widgets.view_grid import NO_MODEL, PREPARING, ViewGrid
from engine.classes import imagenet_classes
from engine.contract import AUTO, ClassInfo, Evidence
from engine.paths import DEMO_CLIP

_SIDE_PANEL_WIDTH = 330


class MainWindow(QMainWindow):
    result_shown = pyqtSignal(object)  # FrameResult, after it is on screen
    problem_reported = pyqtSignal(str)  # the text of an error shown to the user

    def __init__(self, state: AppState, store: QSettings, worker: PipelineWorker | None = None) -> None:
        super().__init__()
        self.state = state
        self.store = store
        self.worker = worker or PipelineWorker()
        self.controller = Controller(state, self.worker, self, save=lambda: settings.save_state(store, state))
        self.current_result: FrameResult | None = None
        self.problems: list[str] = []  # every error shown, in order (the tests read it)
        self._message_box: QMessageBox | None = None
        self.timeline_keeper = TimelineKeeper(state, self.worker, self, store)
        self.exporter = Exporter(
            state, lambda: self.controller.model is not None, self, self.timeline_keeper.shown_otherwise, store
        )
        self.recording = LiveRecording(state, store, self)
        self.shown = RateMeter()
        self.evidence_updates = RateMeter()  # evidence checks received (the status bar and the benchmark show it)
        self.latency = LatencyMeter()
        self.live_edge = LiveEdgeMeter()  # live sources: how far behind now the pictures shown are
        self.latest_evidence: Evidence | None = None
        self.classes: tuple[ClassInfo, ...] = imagenet_classes()  # until the model says which black box it explains
        self._build()
        handlers = menus.MenuHandlers(
            self.open_source,
            self.save_snapshot,
            self.exporter.export,
            self.player.toggle_play,
            self.player.step,
            save_evidence=self.timeline_keeper.save_csv,
            first_frame=self.player.go_to_start,
            last_frame=self.player.go_to_end,
        )
        self.menu_actions = menus.build(self, state, store, handlers)
        extras = extra_menus.ExtraHandlers(self.open_source, self.status.show_info, self.show_help, self.show_messages)
        self.menu_actions.update(extra_menus.build(self, state, store, extras))
        self.help_dialog: HelpDialog | None = None
        self.messages_dialog: MessagesDialog | None = None
        shortcuts.install(self, self.grid, self.class_picker)
        self._connect()
        self.setAcceptDrops(True)
        self.setWindowTitle("Live saliency explainer")
        self._fit_to_screen()
        geometry = store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _fit_to_screen(self) -> None:
        """1500 x 950, or nine tenths of a smaller screen, centred."""
        screen = self.screen()
        available = screen.availableGeometry() if screen is not None else None
        if available is None or available.width() < 400:
            self.resize(1500, 950)
            return
        width = min(1500, int(available.width() * 0.9))
        height = min(950, int(available.height() * 0.9))
        self.setGeometry(
            available.x() + (available.width() - width) // 2,
            available.y() + (available.height() - height) // 2,
            width,
            height,
        )

    def _build(self) -> None:
        self.grid = ViewGrid()
        self.player = PlayerBar(self.state)
        self.timeline = TimelineView(self.state, self.timeline_keeper.timeline)
        self.class_picker = ClassPicker(self.state, self.classes)
        self.top5 = TopPredictions(self.state)
        self.evidence = EvidencePanel()
        self.view_controls = ViewControls(self.state)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        side = QWidget()
        side.setFixedWidth(_SIDE_PANEL_WIDTH)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        for panel in (self.class_picker, self.top5, self.evidence, self.view_controls):
            side_layout.addWidget(panel)
        side_layout.addStretch(1)
        views = QWidget()
        views_layout = QVBoxLayout(views)
        views_layout.setContentsMargins(0, 0, 0, 0)
        views_layout.addWidget(self.grid, stretch=1)
        views_layout.addWidget(self.player)
        views_layout.addWidget(self.timeline)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(views, stretch=1)
        layout.addWidget(side)
        self.setCentralWidget(central)
        self.grid.set_layout(self.state.layout)
        self.region_selector = RegionSelector(list(self.grid.views.values()), self)

    def _connect(self) -> None:
        self.worker.result_ready.connect(self._show_next_result)
        self.worker.evidence_ready.connect(self._on_evidence)
        self.worker.source_opened.connect(self._remember_recent)
        self.worker.source_opened.connect(self._on_source_opened)
        self.region_selector.dragged.connect(self._on_region_dragged)
        self.grid.view_size_changed.connect(self.worker.set_view_size)
        self.player.seek_requested.connect(self.seek)
        self.class_picker.not_found.connect(self.status.show_error)
        self.controller.message.connect(self.status.show_info)
        self.controller.notice.connect(self.status.show_note)
        self.exporter.message.connect(lambda text: self.status.show_info(text, 20000))
        self.exporter.failure.connect(self.report_problem)
        self.recording.message.connect(lambda text: self.status.show_info(text, 20000))
        self.recording.failure.connect(self.report_problem)
        self.controller.failure.connect(self.report_problem)
        self.controller.model_ready.connect(self._on_model_ready)
        self.worker.model_loading.connect(self._on_model_loading)
        self.worker.model_failed.connect(self._on_model_failed)
        self.state.subscribe(self._on_state)
        self._connect_timeline()
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self._update_rates)
        self._status_timer.start(500)

    def _connect_timeline(self) -> None:
        keeper = self.timeline_keeper
        self.result_shown.connect(keeper.on_result)
        keeper.changed.connect(self.timeline.update)
        keeper.message.connect(lambda text: self.status.show_info(text, 20000))
        keeper.failure.connect(self.report_problem)
        self.timeline.seek_requested.connect(self.seek)  # the slider's path
        for requests in (self.player.seek_requested, self.timeline.seek_requested):
            requests.connect(keeper.hold)  # the background pass makes way before the frame is asked for

    # -- what the user (or main) asks for -----------------------------------------------------------------------
    def start(self, source: str | int) -> None:
        self.controller.start(source)

    def open_source(self, spec: SourceSpec) -> None:
        self.status.show_info(f"Opening {getattr(spec, 'label', spec)}...")
        self.worker.open_source(spec)

    def seek(self, index: int) -> None:
        self.worker.seek(self.state.clamp_frame(index))

    def save_snapshot(self, path: str | Path | None = None) -> Path | None:
        """The views on screen as a PNG: at `path`, or in the snapshot folder with a time-stamped name."""
        result = self.current_result
        if result is None:
            self.status.show_error("Nothing to save yet: no frame on screen")
            return None
        if path is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            frame = f"-frame{result.frame_index}" if result.frame_index is not None else ""
            path = settings.snapshot_folder(self.store) / f"snapshot-{stamp}{frame}.png"
        try:
            state = self.state
            checked = self._checked(result)
            picture = snapshot_image(
                result.frame, result.explanation, state.layout, state.show_box, state.caption, checked
            )
            written = write_png(path, picture)
        except OSError as error:
            self.report_problem("Snapshot not saved", str(error))
            return None
        self.status.show_info(f"Snapshot saved: {written}")
        return written

    def report_problem(self, title: str, text: str) -> None:
        """An error for the user: status bar and a dialog that does not block (the video goes on)."""
        self.problems.append(text)
        self.status.show_error(text.split("\n")[0])
        if self._message_box is None:
            self._message_box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
            self._message_box.setWindowModality(Qt.WindowModality.NonModal)
        self._message_box.setWindowTitle(title)
        self._message_box.setText(text)
        self._message_box.show()
        self.problem_reported.emit(text)

    # -- results ------------------------------------------------------------------------------------------------
    def _show_next_result(self) -> None:
        result = self.worker.take_result()
        if result is None or result.generation != self.controller.generation:
            return
        self.current_result = result
        self.state.update(frame_index=result.frame_index)
        explanation = result.explanation
        self.grid.show_result(result.frame, explanation, self.state.show_box)
        if explanation is not None:
            self.latency.record(result.captured_at, result.done_at, self.state.playing)
            self.top5.show_predictions(explanation.top5, explanation.target)
            self._show_evidence()
        if result.live_at is not None and self.state.playing:
            self.live_edge.record(result.live_at, time.perf_counter())
        self.shown.tick()
        self._refresh_help()
        self.recording.on_shown(result, self.latest_evidence)
        self.result_shown.emit(result)

    def _on_evidence(self, evidence: Evidence) -> None:
        if evidence.tag == self.controller.generation:
            self.latest_evidence = evidence
            self.evidence_updates.tick()
            self._show_evidence()
            self._refresh_help()

    def _show_evidence(self) -> None:
        """The frame's probability of the target (every frame) and the newest evidence check of the same target."""
        result = self.current_result
        if result is None or result.explanation is None:
            return
        explanation = result.explanation
        self.evidence.show_note(target_note(explanation, self.state.target != AUTO, self.state.is_restored("target")))
        mode = "auto" if self.state.target == AUTO else "chosen"
        text = f"Explaining: {explanation.target_name} ({explanation.target}, {mode})"
        played = result.played
        otherwise = played.note(result.frame_index) if played is not None and result.frame_index is not None else ""
        how = f"\nNot as exported: {otherwise}" if otherwise else ""
        if not self.state.evidence:
            self.evidence.show_evidence(text, None, how.strip())
            return
        probabilities, age = shown_evidence(result, self.latest_evidence)
        self.evidence.show_evidence(text, probabilities, age + how)

    def _update_rates(self) -> None:
        self.status.show_rates(self.shown.rate(), self.worker.stats, self.latency.ms)
        # paused, the picture is old on purpose: the number is of the pictures shown while playing
        behind = self.live_edge.behind_now_ms(time.perf_counter()) if self.state.playing else self.live_edge.median_ms()
        self.status.show_live_edge(behind)
        self.status.show_recording(self.recording.status_text())

    def _on_model_ready(self, info: ModelInfo) -> None:
        self.status.show_model(info.description, info.backend, info.backend_reason)
        if len(info.classes) != len(self.classes) or info.classes != self.classes:
            self.classes = info.classes
            self.class_picker.set_classes(info.classes)

    def _on_model_loading(self, text: str = "") -> None:
        """Frames shown until the model is ready say so (a file waits on its frame, a camera goes on)."""
        self.status.show_model_loading(text)
        self._say_without_model(PREPARING)

    def _say_without_model(self, text: str) -> None:
        self.grid.no_model_text = text
        result = self.current_result
        if result is not None and result.explanation is None:
            self.grid.show_result(result.frame, None, self.state.show_box)

    def _on_model_failed(self, _text: str = "") -> None:
        self._say_without_model(NO_MODEL)
        self.status.show_no_model()
        self.top5.show_predictions([], None)
        self.evidence.show_evidence("no model: nothing explained", {})

    def _on_state(self, changed: set[str]) -> None:
        if "evidence" in changed:
            self._show_evidence()
        if "layout" in changed:
            self.grid.set_layout(self.state.layout)
        if "show_box" in changed and self.current_result is not None:
            result = self.current_result
            self.grid.show_result(result.frame, result.explanation, self.state.show_box)
        if changed & {"region", "aspect"}:
            self.latest_evidence = None  # checked on another picture of the frame: not this one's numbers
        if "region" in changed:
            self.status.show_info(region_text(self.state.region))
        if "source_label" in changed:
            label = self.state.source_label
            self.setWindowTitle(f"{label} - Live saliency explainer" if label else "Live saliency explainer")

    # -- a region, recent files, help ----------------------------------------------------------------------------
    def _on_region_dragged(self, drag: tuple[float, float, float, float], picture_size: tuple[int, int]) -> None:
        """A rectangle dragged on a view: explain that part of the frame (inside the region shown, if one is)."""
        result = self.current_result
        if result is None or result.explanation is None:
            return
        frame_size = (result.frame.shape[1], result.frame.shape[0])
        region = frame_region(drag, picture_size, frame_size, self.state.region)
        if region is not None:
            self.state.update(region=region)

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.live_edge.reset()
        self.status.set_live_clock(info.live_clock)

    def _remember_recent(self, info: SourceInfo) -> None:
        """A file by its path, a camera by its spec, a stream by its address: when the user chose it."""
        if info.path and info.kind in ("video", "image") and Path(info.path) != DEMO_CLIP:
            recent.remember(self.store, info.path)
        elif info.spec and info.chosen:
            recent.remember(self.store, info.spec)

    def _checked(self, result: FrameResult) -> dict[str, float] | None:
        """The live evidence check of the frame on screen, when it has come (None: not checked)."""
        evidence, explanation = self.latest_evidence, result.explanation
        if evidence is None or explanation is None or evidence.tag != result.generation:
            return None
        if evidence.frame_index != result.frame_index or evidence.target != explanation.target:
            return None
        return dict(evidence.probabilities)

    def show_help(self) -> HelpDialog:
        """Help > What am I looking at?: the views and numbers of the frame on screen, explained."""
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(self)
        self.help_dialog.show()
        self.help_dialog.raise_()
        self._refresh_help()
        return self.help_dialog

    def show_messages(self) -> MessagesDialog:
        """Help > Messages: every message of the session, whole, kept up to date while open."""
        if self.messages_dialog is None:
            self.messages_dialog = MessagesDialog(self.status.log, self)
            self.status.logged.connect(self.messages_dialog.add)
        else:
            self.messages_dialog.show_lines(self.status.log)
        self.messages_dialog.show()
        self.messages_dialog.raise_()
        return self.messages_dialog

    def _refresh_help(self) -> None:
        dialog, result = self.help_dialog, self.current_result
        if dialog is None or not dialog.isVisible() or result is None:
            return
        explanation = result.explanation
        numbers = (
            None if explanation is None else FrameNumbers.of(explanation, self._checked(result), self.state.region)
        )
        dialog.show_frame(explanation, numbers)

    # -- drag and drop, closing ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:
        if event is not None and event.mimeData() is not None and event.mimeData().hasUrls():  # type: ignore[union-attr]
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime is not None else []
        if files:
            self.open_source(files[0])

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Stop the worker (it closes the camera or file and the engine) before the window goes."""
        self._status_timer.stop()
        self.store.setValue("geometry", self.saveGeometry())
        settings.save_state(self.store, self.state)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Finish a recording, stop the pipeline thread (and an export) and wait for them: a model still loading
        cannot be interrupted, and a QThread destroyed while it runs takes the process down."""
        self.recording.close()
        self.exporter.cancel_and_wait()
        self.timeline_keeper.close()
        self.worker.stop()
        if not self.worker.wait(5000):
            print("Waiting for the model to finish loading before closing...", file=sys.stderr)
            self.worker.wait()
