"""Explainer: frames in, explanations out, with one masking model on one backend. Importing this module is cheap.

Two runtimes behind one interface:
- the CPU runtime (ONNX Runtime or OpenVINO on numpy arrays, engine/pipeline_host.py): used for `onnxruntime`,
  `openvino`, and for `auto` on a machine whose CUDA driver sees no NVIDIA GPU. It needs torch only the first time a
  model file is used (to check and export it); afterwards the model is found in the index of prepared models
  (engine/prepared.py) and torch is never imported: a launch is then seconds faster;
- the torch runtime (engine/backends/*): TensorRT and torch-cuda on a GPU (engine/pipeline.py composites on the
  device), and torch-cpu, the FP32 reference.

    with Explainer("model.safetensors", backend="auto") as explainer:
        explanation = explainer.explain(frame_rgb_uint8, "auto")                    # offline: everything, full size
        prepared = explainer.prepare(frame, view_size=(470, 264))                    # live: ahead, in another thread
        explanation = explainer.explain_prepared(prepared, AUTO, evidence=False)     # the mask now, at view size
        probabilities = explainer.evidence(explanation)                             # the check later (another thread)

Errors: ModelFileError, BlackBoxMismatchError, BackendUnavailableError, UnknownClassError (all SaliencyError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.closing import Closing
from engine.composite_host import check_fill, check_opacity
from engine.contract import AUTO, BACKEND_CHOICES, ClassInfo, Explanation
from engine.errors import BackendUnavailableError, ModelFileError
from engine.gpu_probe import nvidia_gpu_count
from engine.paths import DEFAULT_MODEL, default_model_path
from engine.pipeline_host import HostPipeline, MaskFilter, PreparedFrame, as_rgb_frame, resolve_target
from engine.prepared import PreparedModel, find, forget
from engine.runners import RUNNER_NAMES, Runner, RunnerLoadError, Threads, create_runner, runner_availability

if TYPE_CHECKING:
    from engine.models.blackbox import BlackBox
    from engine.models.masker import Masker

TORCH_BACKENDS = ("tensorrt", "torch-cuda", "torch-cpu")


class Pipeline(Protocol):
    """What HostPipeline and DevicePipeline both offer."""

    input_size: int
    classes: tuple[ClassInfo, ...]

    def warm_up(self, evidence: bool = True) -> None: ...

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None = None) -> PreparedFrame: ...

    def run(
        self,
        frames: list[PreparedFrame],
        targets: list[int],
        *,
        fill: str,
        opacity: float,
        evidence: bool,
        mask_filter: MaskFilter | None = None,
    ) -> list[Explanation]: ...

    def evidence(self, explanation: Explanation) -> dict[str, float]: ...


@dataclass(frozen=True)
class RuntimePlan:
    host: bool  # the CPU runtime (no torch once prepared)
    name: str  # the runner, or the torch backend choice ("auto" lets engine.backends decide)
    reason: str


def preferred_cpu_runner() -> tuple[str, str]:
    """The CPU runner `auto` takes, and why. ONNX Runtime: see README ("Backends by measurement") for the numbers
    that decided it; OpenVINO is there to be asked for by name."""
    ok, reason = runner_availability("onnxruntime")
    if ok:
        return "onnxruntime", reason
    ok_openvino, reason_openvino = runner_availability("openvino")
    if ok_openvino:
        return "openvino", f"{reason_openvino} (no onnxruntime: {reason})"
    raise BackendUnavailableError(f"no CPU runtime can run here: {reason}; {reason_openvino}")


def plan_runtime(choice: str) -> RuntimePlan:
    """Which runtime a backend choice means here. A named backend that cannot run raises BackendUnavailableError."""
    if choice not in BACKEND_CHOICES:
        raise BackendUnavailableError(f"unknown backend {choice!r}; choose one of {', '.join(BACKEND_CHOICES)}")
    if choice in RUNNER_NAMES:
        ok, reason = runner_availability(choice)
        if not ok:
            raise BackendUnavailableError(f"the {choice} backend cannot run here: {reason}")
        return RuntimePlan(True, choice, f"asked for {choice}: {reason}")
    if choice == "auto" and nvidia_gpu_count() == 0:
        name, reason = preferred_cpu_runner()
        return RuntimePlan(True, name, f"{name}: {reason}; no tensorrt / torch-cuda (the CUDA driver sees no GPU)")
    return RuntimePlan(False, choice, "")


class Explainer(Closing):
    """Explains frames with one masking model on one backend. Building it is the only slow step."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: str = "auto",
        *,
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
        batch_sizes: tuple[int, ...] = (1,),
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self._settings(fill, opacity, evidence)
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.exists():
            missing = "the bundled default model is missing" if path == DEFAULT_MODEL else "model file does not exist"
            raise ModelFileError(f"{missing}: {path}; pass a model file (models come from `python -m trainer train`)")
        plan = plan_runtime(backend)
        options = dict(backend_options or {})
        if plan.host:
            self._start_host(self._prepared_file(path, plan, options), plan, options)
        else:
            from engine.loading import load_masker  # torch loads here, and only on this path

            model = load_masker(path)
            self._start_torch(model.masker, model.blackbox, path.stem, plan, batch_sizes, options)

    @classmethod
    def from_masker(
        cls,
        masker: Masker,
        blackbox: BlackBox,
        backend: str = "auto",
        *,
        name: str = "masker",
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
        batch_sizes: tuple[int, ...] = (1,),
        backend_options: dict[str, Any] | None = None,
    ) -> Explainer:
        """An Explainer for a masker already in memory (e.g. an untrained one, for benchmarks and tests)."""
        explainer = cls.__new__(cls)
        explainer._settings(fill, opacity, evidence)
        plan = plan_runtime(backend)
        options = dict(backend_options or {})
        if plan.host:
            from engine.preparing import prepare_masker

            explainer._start_host(prepare_masker(masker, blackbox, name), plan, options)
        else:
            explainer._start_torch(masker, blackbox, name, plan, batch_sizes, options)
        return explainer

    # -- set-up ---------------------------------------------------------------------------------------------------
    def _settings(self, fill: str, opacity: float, evidence: bool) -> None:
        self.fill = check_fill(fill)
        self.opacity = check_opacity(opacity)
        self.evidence_on = bool(evidence)
        self.runner: Runner | None = None
        self.backend: Any = None  # the torch backend on the torch runtime

    def _prepared_file(self, path: Path, plan: RuntimePlan, options: dict[str, Any]) -> PreparedModel:
        prepared = find(path)
        if prepared is None:
            from engine.preparing import prepare_model_file  # torch: the first time this file is used here

            prepared = prepare_model_file(path)
        self._model_path = path
        return prepared

    def _start_host(self, prepared: PreparedModel, plan: RuntimePlan, options: dict[str, Any]) -> None:
        threads = Threads(int(options.pop("threads", 0)), int(options.pop("evidence_threads", 0)))
        try:
            runner = create_runner(plan.name, prepared.onnx, threads, **options)
        except RunnerLoadError as error:  # a damaged cached export: forget it, export again, once
            error.path.unlink(missing_ok=True)
            model_path = getattr(self, "_model_path", None)
            if model_path is None:
                raise
            forget(model_path)
            prepared = self._prepared_file(model_path, plan, options)
            runner = create_runner(plan.name, prepared.onnx, threads, **options)
        self.runner = runner
        self.backend_name = plan.name
        self.backend_reason = plan.reason
        self.model_description = prepared.name
        self.classes = prepared.classes
        self.input_size = prepared.input_size
        self.pipeline: Pipeline = HostPipeline(runner, prepared.input_size, prepared.classes)
        self.pipeline.warm_up()

    def _start_torch(
        self,
        masker: Masker,
        blackbox: BlackBox,
        name: str,
        plan: RuntimePlan,
        batch_sizes: tuple[int, ...],
        options: dict[str, Any],
    ) -> None:
        from engine.backends import build_backend
        from engine.graphs import model_graphs
        from engine.pipeline import DevicePipeline, TorchRunner

        graphs = model_graphs(masker.cpu(), blackbox.cpu(), name=name)
        # `auto` tries the backends in order and falls through one whose set-up fails, saying why
        self.backend, backend_name, reason = build_backend(plan.name, graphs, batch_sizes=batch_sizes, **options)
        self.backend_name, self.backend_reason = backend_name, reason
        self.model_description = graphs.name
        self.classes = blackbox.classes
        self.input_size = graphs.input_size
        if self.backend.device.type == "cpu":
            self.runner = TorchRunner(self.backend)
            self.pipeline = HostPipeline(self.runner, graphs.input_size, blackbox.classes)
        else:
            self.pipeline = DevicePipeline(self.backend, graphs.input_size, blackbox.classes)
        self.pipeline.warm_up()

    # -- explaining -----------------------------------------------------------------------------------------------
    def resolve(self, target: int | str) -> int:
        """A class index or AUTO from an index, AUTO, "auto", or a class name / wnid (UnknownClassError)."""
        return resolve_target(target, self.classes)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None = None) -> PreparedFrame:
        """The work on a frame that does not need the model (resizing): can run ahead, in another thread."""
        return self.pipeline.prepare(as_rgb_frame(frame), view_size)

    def explain_prepared(
        self,
        prepared: PreparedFrame,
        target: int,
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
    ) -> Explanation:
        """One prepared frame: the views at the size it was prepared for; evidence now only if asked."""
        return self.pipeline.run(
            [prepared],
            [self.resolve(target)],
            fill=self.fill if fill is None else fill,
            opacity=self.opacity if opacity is None else float(opacity),
            evidence=self.evidence_on if evidence is None else bool(evidence),
        )[0]

    def explain(
        self,
        frame: np.ndarray,
        target: int | str = AUTO,
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
        view_size: tuple[int, int] | None = None,
    ) -> Explanation:
        """One (H, W, 3) uint8 RGB frame (grey and RGBA are converted) -> Explanation (views at full size, or at
        most `view_size`)."""
        return self.explain_prepared(
            self.prepare(frame, view_size), self.resolve(target), fill=fill, opacity=opacity, evidence=evidence
        )

    def explain_batch(
        self,
        frames: list[np.ndarray],
        targets: list[int | str],
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
        mask_filter: MaskFilter | None = None,
    ) -> list[Explanation]:
        """Same-sized frames in one batch (offline video), at full size; timings are per frame. `mask_filter`: a
        step between the model's masks and everything made from them (engine.sequence: the average over time)."""
        prepared = [self.prepare(frame) for frame in frames]
        return self.pipeline.run(
            prepared,
            [self.resolve(target) for target in targets],
            fill=self.fill if fill is None else fill,
            opacity=self.opacity if opacity is None else float(opacity),
            evidence=self.evidence_on if evidence is None else bool(evidence),
            mask_filter=mask_filter,
        )

    def evidence(self, explanation: Explanation) -> dict[str, float]:
        """The evidence check of an explanation made earlier: the target's probability on the frame, on Phi(X, M)
        and on Phi(X, 1 - M). Safe to call from another thread while frames are being explained."""
        return self.pipeline.evidence(explanation)

    def model_call(self, batch: int) -> Callable[[], object]:
        """A call that runs the saliency graph alone on `batch` random images already in place (benchmarks)."""
        rng = np.random.default_rng(0)
        images = rng.random((batch, 3, self.input_size, self.input_size), dtype=np.float32)
        targets = np.full((batch,), AUTO, dtype=np.int64)
        if self.runner is not None:
            feed: dict[str, np.ndarray] = {"image": images, "target": targets}
            runner = self.runner
            return lambda: runner.run("saliency", feed)
        import torch

        backend = self.backend
        device_feed = {
            "image": torch.from_numpy(images).to(backend.device),
            "target": torch.from_numpy(targets).to(backend.device),
        }
        return lambda: backend.infer("saliency", device_feed)

    def synchronize(self) -> None:
        """Wait for the device (a no-op on the CPU)."""
        if self.runner is None and self.backend.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.backend.device)

    def describe(self) -> str:
        if self.runner is not None:
            return self.runner.describe()
        return str(self.backend.describe())

    def close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
