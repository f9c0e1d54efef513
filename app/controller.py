"""Controller: keeps the PipelineWorker in step with AppState, both ways.

State -> worker: a new target / fill / opacity / evidence setting, play or pause, another model or backend.
Worker -> state: the source that opened (kind, frame count, fps), a corrected frame count, the end of a file.
Messages for the user go out through `message` / `notice` / `failure` (the window shows them).

A backend or a model that fails does not stick: a backend asked for by name that cannot run here gives way to
`auto`, and a model remembered from the last session that no longer loads gives way to the bundled one; the choice
is saved at once (`save`), so the next launch does not fail again, and the user hears what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal

from app.explaining.mailbox import CameraOrDemo, ExplainParams, ModelSpec
from app.explaining.results import ModelInfo, SourceInfo
from app.explaining.scheduler import AUTO_SOURCE
from app.explaining.worker import PipelineWorker
from app.source_specs import as_camera
from app.state import AppState
from engine.paths import DEMO_CLIP


class Controller(QObject):
    message = pyqtSignal(str)  # something to tell the user (status bar)
    notice = pyqtSignal(str)  # something to know about the source, said once (status bar, for longer)
    failure = pyqtSignal(str, str)  # (title, text): something went wrong, the app goes on
    model_ready = pyqtSignal(object)  # ModelInfo

    def __init__(
        self,
        state: AppState,
        worker: PipelineWorker,
        parent: QObject | None = None,
        save: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.worker = worker
        self.save = save  # writes the settings now (a fallback is remembered even if the app is killed)
        self.generation = 0  # of the source on screen: results of older sources are ignored
        self.model: ModelInfo | None = None
        state.subscribe(self._on_state)
        worker.source_opened.connect(self._on_source_opened)
        worker.source_changed.connect(self._on_source_changed)
        worker.source_failed.connect(lambda text: self.failure.emit("Cannot open this source", text))
        worker.source_lost.connect(self._on_source_lost)
        worker.source_notice.connect(self.notice)
        worker.playback_ended.connect(lambda: state.update(playing=False))
        worker.model_loading.connect(self.message)
        worker.model_ready.connect(self._on_model_ready)
        worker.model_failed.connect(self._on_model_failed)
        worker.backend_failed.connect(self._on_backend_failed)
        worker.error.connect(lambda text: self.failure.emit("Problem", text))

    def start(self, source: str | int) -> None:
        """Send the initial settings, model and source, then start the worker thread."""
        self.worker.set_params(self.params())
        self.worker.set_loop(self.state.loop)
        self.worker.load_model(ModelSpec.of(self.state))
        if source == AUTO_SOURCE and self.state.last_camera:  # the camera chosen last, else the demo clip
            self.worker.open_source(CameraOrDemo(self.state.last_camera))
        else:
            self.worker.open_source(source)
        self.worker.start()

    def params(self) -> ExplainParams:
        return ExplainParams.of(self.state)

    def _on_state(self, changed: set[str]) -> None:
        if changed & {"target", "fill", "opacity", "evidence", "region", "aspect", "steady_class", "smooth_mask"}:
            self.worker.set_params(self.params())
        if "playing" in changed:
            self.worker.set_playing(self.state.playing)
        if "loop" in changed:
            self.worker.set_loop(self.state.loop)
        if changed & {"model_path", "backend"}:
            self.worker.load_model(ModelSpec.of(self.state))

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.generation = info.generation
        self.state.update(
            source_kind=info.kind,
            source_label=info.label,
            frame_count=info.frame_count,
            fps=info.fps,
            frame_index=None,
            playing=info.kind != "image",
            region=None,  # a region of the frame belongs to the source it was drawn on
            source_path=info.path,
            source_spec=info.spec,
        )
        if info.chosen and info.kind == "camera" and as_camera(info.spec) is not None:
            self.state.update(last_camera=info.spec)  # opened at the next start (without --source)
        if info.path and Path(info.path) != DEMO_CLIP:
            self.state.update(last_file=info.path)
        if info.note:  # e.g. why the demo clip plays instead of a webcam: a note that stays until read
            self.notice.emit(info.note)
        else:
            self.message.emit(f"Opened {info.label}")

    def _on_source_changed(self, info: SourceInfo) -> None:
        if info.generation == self.generation:
            self.state.update(frame_count=info.frame_count)

    def _on_source_lost(self, text: str) -> None:
        self.state.update(playing=False, source_kind="", frame_count=None)
        self.failure.emit("Source lost", f"{text}\n\nOpen a file (Ctrl+O) or pick a camera from the Camera menu.")

    def _on_model_ready(self, info: ModelInfo) -> None:
        self.model = info
        self.model_ready.emit(info)
        self.message.emit(f"Model ready: {info.description} on {info.backend} ({info.backend_reason})")

    def _on_backend_failed(self, text: str) -> None:
        """A backend asked for by name cannot run here: `auto` instead, remembered, and said (the model is fine)."""
        self.model = None
        failed = self.state.backend
        self.state.update(backend="auto")  # loads the model again, on the best backend that runs here
        self.save()
        self.notice.emit(
            f"{text}. Switched to the auto backend (remembered for next time); File \u203a Backend shows what can "
            f"run here{_install_hint(failed)}."
        )

    def _on_model_failed(self, text: str) -> None:
        self.model = None
        if self.state.model_path is not None and self.state.is_restored("model_path"):
            remembered = Path(self.state.model_path).name
            self.state.update(model_path=None)  # loads the bundled model instead
            self.save()
            self.notice.emit(
                f"The model remembered from the last session ({remembered}) could not be loaded: {text}. Using the "
                f"bundled model instead (remembered for next time); File \u203a Open model... picks another."
            )
            return
        self.failure.emit(
            "No model",
            f"{text}\n\nThe video still plays, without explanations. Load a model with File \u203a Open model... "
            f"or start with --model PATH (models come from `python -m trainer train`).",
        )


def _install_hint(backend: str) -> str:
    """What makes a backend that cannot run here run (after a comma), or nothing when no install helps."""
    if backend == "tensorrt":
        return ", or install TensorRT on a machine with an NVIDIA GPU"
    if backend == "torch-cuda":
        return ", or run on a machine with an NVIDIA GPU and a CUDA build of PyTorch"
    if backend in ("onnxruntime", "openvino"):
        return f", or install {backend} (pip install {backend})"
    return ""
