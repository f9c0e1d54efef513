"""TimelineKeeper: keeps the evidence timeline (app.timeline.rows) in step with what is open, explained and chosen.

- It follows a key (the video file, the class or "auto", the steady class and the mask average, the fill, the
  aspect, the model): the numbers the live view and the export give each frame. In "auto" the class is the one each
  frame is explained for (held by the steady class, as on screen and in the export). A new key clears the timeline
  (or shows the rows kept for it) and restarts the background pass for it.
- Rows come from the frames shown (`on_result`, connected by the window: provisional, drawn at once), the live
  evidence checks, and the background pass (app/timeline/whole_file_pass.py: every frame in order, the rows that
  count). The pass runs only with the evidence check on (the user's switch for black-box passes beyond the frame's
  own) and only for video files. While the video plays (and loops) it explains one frame for every PLAYING_SHARE
  frames the live view shows, so that the live view keeps most of the CPU and the pass is through the file after
  PLAYING_SHARE loops at most, however fast the machine; paused, it runs freely. A seek, a step or a setting (and a
  frame shown while paused) pause it until the live view has been idle for QUIET_MS.
- File > Save evidence as CSV writes the pass's rows (engine.video.frametable's columns, the export's numbers).
- `shown_otherwise()`: the frames the live view explained otherwise than the export (alone after a jump, frames
  passed over while playing late), each with a note that says how, for the export's caption.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QObject, QSettings, QTimer, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QWidget

from app import settings
from app.explaining.results import FrameResult, ModelInfo, SourceInfo
from app.explaining.worker import PipelineWorker
from app.state import AppState
from app.timeline.rows import EvidenceTimeline, TimelineKey
from app.timeline.whole_file_pass import ModelChoice, PassJob, TimelinePass
from engine.contract import AUTO, Evidence
from engine.errors import SaliencyError
from engine.runtime.temporal import Steadiness
from engine.video.frametable import FrameRecord

QUIET_MS = 600  # the live view has been idle this long: the background pass may take the CPU
# While playing, the pass explains one frame for every this many the live view shows. A pass frame costs 63 ms of
# CPU at 720p (the model, full-size views and the evidence), a live one 28 ms and its evidence check 22 ms (about 12 of
# 20 frames a second): the pass takes about a third of what the live view takes, and only until it is through the
# file, after this many loops at most
PLAYING_SHARE = 5
# what changes without the user acting (the player moving on, a source opening)
_PLAYBACK_FIELDS = {"frame_index", "frame_count", "fps", "source_kind", "source_label", "last_file", "source_path"}


class TimelineKeeper(QObject):
    changed = pyqtSignal()  # the timeline's rows or key changed: repaint
    message = pyqtSignal(str)  # for the status bar
    failure = pyqtSignal(str, str)  # (title, text)
    # from the pass's thread to this object's (queued)
    _record = pyqtSignal(object, object)
    _done = pyqtSignal(object, int)
    _error = pyqtSignal(object, str)

    def __init__(
        self, state: AppState, worker: PipelineWorker, parent: QWidget, store: QSettings | None = None
    ) -> None:
        """`store`: where the folder saved to last is remembered (the Save dialog opens there)."""
        super().__init__(parent)
        self.state = state
        self._store = store
        self.timeline = EvidenceTimeline()
        self.explainer_pass: TimelinePass | None = None  # started the first time there is work for it
        self._dialog_parent = parent
        self._source: SourceInfo | None = None  # the video file open (None: a camera, an image, nothing)
        self._model: ModelChoice | None = None
        self._models_loaded = 0
        self._failed_model: int | None = None  # the pass could not run on this model: not tried again
        self._shown_playing = 0  # frames shown while playing, towards the pass's next frame
        self._closed = False
        self._quiet = QTimer(self)
        self._quiet.setSingleShot(True)
        self._quiet.setInterval(QUIET_MS)
        self._quiet.timeout.connect(self._resume)
        worker.source_opened.connect(self._on_source_opened)
        worker.source_changed.connect(self._on_source_changed)
        worker.model_ready.connect(self._on_model_ready)
        worker.model_loading.connect(lambda _text: self._on_model_gone())
        worker.model_failed.connect(lambda _text: self._on_model_gone())
        worker.evidence_ready.connect(self._on_evidence)
        self._record.connect(self._on_record)
        self._done.connect(self._on_done)
        self._error.connect(self._on_error)
        state.subscribe(self._on_state)

    # -- what the window hands over -----------------------------------------------------------------------------
    def on_result(self, result: FrameResult) -> None:
        """A frame on screen (after the window showed it)."""
        source, explanation = self._source, result.explanation
        if source is None or result.generation != source.generation or explanation is None:
            return
        if self.state.region is not None:  # a region's numbers are not the whole frame's: the timeline's are
            return
        if not self.state.playing:
            self.hold()  # a frame the user asked for (a seek, a step, a setting): the live view goes first
        elif self.explainer_pass is not None:
            self._shown_playing += 1
            if self._shown_playing >= PLAYING_SHARE:
                self._shown_playing = 0
                self.explainer_pass.grant()
        index = result.frame_index
        note = result.played.note(index) if result.played is not None and index is not None else ""
        if index is not None and self.timeline.add_explained(index, explanation, note):
            self.changed.emit()

    def shown_otherwise(self) -> dict[int, str]:
        """Frame -> how the live view explained it otherwise than the export does, for the settings on screen (none
        with a region: the timeline does not follow one)."""
        if self.state.region is not None or self.timeline.key != self._key():
            return {}
        return {index: f"live view: {note}" for index, note in self.timeline.shown_otherwise.items()}

    def save_csv(self, path: str | Path | None = None) -> Path | None:
        """The rows known so far as CSV, at `path` (None: ask where); the path written, or None."""
        timeline, source = self.timeline, self._source
        if timeline.key is None or source is None or timeline.filled() == 0:
            self.failure.emit("Save evidence", "Nothing to save yet: open a video file and let frames be explained.")
            return None
        if not timeline.records():  # the live view's rows are provisional: the CSV holds the export's numbers only
            how = "" if self.state.evidence else ", which runs with Live evidence on"
            self.failure.emit(
                "Save evidence",
                f"No frame computed in order yet: the CSV holds the background pass's rows (the export's numbers){how}."
                " The timeline's other rows are the live view's, provisional.",
            )
            return None
        if path is None:
            video = Path(source.path)
            name = "auto" if timeline.key.target == AUTO else (timeline.class_name or str(timeline.key.target))
            name = name.replace(" ", "_").replace("/", "_")
            folder = settings.save_folder(self._store) if self._store is not None else Path.home()
            suggestion = str(folder / f"{video.stem}-evidence-{name}.csv")  # (the video's folder may be read-only)
            path, _ = QFileDialog.getSaveFileName(
                self._dialog_parent, "Save evidence as CSV", suggestion, "CSV (*.csv)"
            )
            if not path:
                return None
            if self._store is not None:
                settings.remember_save_folder(self._store, Path(path))
        try:
            rows = timeline.write_csv(path)
        except SaliencyError as error:
            self.failure.emit("Evidence not saved", str(error))
            return None
        missing = timeline.frame_count - rows
        rest = (
            f"; {missing} frames are not computed in order yet (the background pass computes them while the video "
            "plays, and faster while it is paused)"
            if missing > 0
            else ""
        )
        what = "auto" if timeline.key.target == AUTO else timeline.class_name
        self.message.emit(f"Saved the evidence of {rows} frames ({what}) to {path}{rest}")
        return Path(path)

    def close(self) -> None:
        """The window closes: the pass stops, and none starts again (the worker's last signals may still come in;
        a pass started then would be building its model, in C code, when the interpreter ends: an abort)."""
        self._closed = True
        self._quiet.stop()
        if self.explainer_pass is not None:
            self.explainer_pass.close()
            self.explainer_pass = None

    # -- the key ------------------------------------------------------------------------------------------------
    def _key(self) -> TimelineKey | None:
        """The key of what is open and chosen now (None: no video file or no model)."""
        source, model, state = self._source, self._model, self.state
        if source is None or model is None:
            return None
        # the class held matters in "auto" only: a chosen class is explained as itself on every frame
        steadiness = Steadiness.from_switches(state.steady_class and state.target == AUTO, state.smooth_mask)
        return TimelineKey(source.path, state.target, state.fill, self._models_loaded, state.aspect, steadiness)

    def _select(self) -> None:
        """Follow the key of what is open and chosen now; restart the pass for it."""
        source, key = self._source, self._key()
        count = (source.frame_count or 0) if source is not None else 0
        self.timeline.select(key, count, source.fps if source is not None else 25.0)
        self._start_pass()
        self.changed.emit()

    def _start_pass(self) -> None:
        key, source, model = self.timeline.key, self._source, self._model
        wanted = key is not None and source is not None and model is not None and self.state.evidence
        wanted = wanted and not self._closed
        complete = self.timeline.complete_frames()
        if not wanted or self._failed_model == self._models_loaded or len(complete) == self.timeline.frame_count:
            if self.explainer_pass is not None:
                self.explainer_pass.start(None)  # nothing to do (or all there, kept from before)
            return
        assert key is not None and source is not None and model is not None
        if self.explainer_pass is None:
            self.explainer_pass = TimelinePass(self._record.emit, self._done.emit, self._error.emit)
            self._share_by_playing()
            self.hold()
        job = PassJob(key, source.path, key.target, key.fill, source.fps, model, complete, key.steadiness, key.aspect)
        self.explainer_pass.start(job)

    # -- when the pass may run ----------------------------------------------------------------------------------
    def hold(self, _frame: int | None = None) -> None:
        """The user acts on the live view (a seek asked for, a setting changed, a frame shown while paused): pause
        the pass until the live view has been idle for QUIET_MS."""
        if self.explainer_pass is None:
            return
        self.explainer_pass.set_paused(True)
        self._quiet.start()

    def _share_by_playing(self) -> None:
        """Playing: the pass explains a frame per PLAYING_SHARE frames shown; paused: as many as it can."""
        if self.explainer_pass is not None:
            self._shown_playing = 0
            self.explainer_pass.allow(0 if self.state.playing else None)

    def _resume(self) -> None:
        if self.explainer_pass is not None:
            self.explainer_pass.set_paused(False)

    # -- what happens -------------------------------------------------------------------------------------------
    def _on_state(self, changed: set[str]) -> None:
        if changed & {"target", "fill", "aspect", "steady_class", "smooth_mask"}:
            self._select()
        elif "evidence" in changed:
            self._start_pass()
        if "playing" in changed:
            self._share_by_playing()
        if changed - _PLAYBACK_FIELDS:  # a setting (not the player moving on by itself)
            self.hold()

    def _on_source_opened(self, info: SourceInfo) -> None:
        self._source = info if info.kind == "video" and info.path and info.frame_count else None
        self.timeline.forget()
        self._select()

    def _on_source_changed(self, info: SourceInfo) -> None:
        if self._source is not None and info.generation == self._source.generation and info.frame_count:
            self._source = info
            self.timeline.resize(info.frame_count)
            self.changed.emit()

    def _on_model_ready(self, info: ModelInfo) -> None:
        self._model = ModelChoice(self.state.model_path, info.backend)
        self._models_loaded += 1
        self.timeline.forget()
        self._select()

    def _on_model_gone(self) -> None:
        self._model = None
        self.timeline.forget()
        self._select()

    def _on_evidence(self, evidence: Evidence) -> None:
        source = self._source
        if source is None or evidence.tag != source.generation or self.state.region is not None:
            return
        if self.timeline.add_evidence(evidence.frame_index, evidence.target, evidence.probabilities):
            self.changed.emit()

    def _on_record(self, key: object, record: FrameRecord) -> None:
        if isinstance(key, TimelineKey) and self.timeline.add_record(key, record):
            self.changed.emit()

    def _on_done(self, key: object, frames: int) -> None:
        if isinstance(key, TimelineKey) and key == self.timeline.key:
            if 0 < frames < self.timeline.frame_count:  # read to its end: the file's own count, not its header's
                self.timeline.resize(frames)
                self.changed.emit()
            name = "auto" if key.target == AUTO else self.timeline.class_name
            self.message.emit(f"Evidence timeline: all {frames} frames computed for {name}")

    def _on_error(self, key: object, text: str) -> None:
        if isinstance(key, TimelineKey):
            self._failed_model = key.model
        self.failure.emit("Evidence timeline", f"The background pass over the video stopped: {text}")
