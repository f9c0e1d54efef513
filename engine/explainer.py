"""Explainer: frames in, explanations out, with one masking model on one backend. Importing this module is cheap.

Two runtimes behind one interface:
- the CPU runtime (ONNX Runtime or OpenVINO on numpy arrays, engine/runtime/host.py): used for `onnxruntime`,
  `openvino`, and for `auto` on a machine whose CUDA driver sees no NVIDIA GPU. It runs a model's exported graphs
  (engine/modelfiles/exported.py: the bundled models carry theirs, so a plain install needs no torch at all), else the
  graphs exported on this machine (engine/modelfiles/prepared.py's index), else it exports them with torch the first
  time a model file is used, when torch is installed;
- the torch runtime (engine/backends/*): TensorRT and torch-cuda on a GPU (engine/runtime/device.py composites on the
  device), and torch-cpu, the FP32 reference.

    with Explainer("model.safetensors", backend="auto") as explainer:
        explanation = explainer.explain(frame_rgb_uint8, "auto")                    # offline: everything, full size
        prepared = explainer.prepare(frame, view_size=(470, 264))                    # live: ahead, in another thread
        explanation = explainer.explain_prepared(prepared, AUTO, evidence=False)     # the mask now, at view size
        probabilities = explainer.evidence(explanation)                             # the check later (another thread)

A class asked for by index that the black box gives less than `gate` (engine.runtime.gate.GATE, 0.002) gets an
empty mask.

Errors: ModelFileError, BlackBoxMismatchError, BackendUnavailableError, UnknownClassError (all SaliencyError).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.classes import resolve_target
from engine.closing import Closing
from engine.contract import AUTO, BACKEND_CHOICES, Explanation
from engine.errors import BackendUnavailableError, ModelFileError
from engine.modelfiles.exported import exported_graphs
from engine.modelfiles.prepared import PreparedModel, find, forget
from engine.paths import DEFAULT_MODEL, default_model_path
from engine.runtime.composite_host import check_fill, check_opacity
from engine.runtime.framing import Region, as_rgb_frame, framed, unpad
from engine.runtime.gate import GATE, check_gate
from engine.runtime.gpu_probe import nvidia_gpu_count
from engine.runtime.host import HostKernels
from engine.runtime.runners import RUNNER_NAMES, Runner, RunnerLoadError, Threads, create_runner, runner_availability
from engine.runtime.stages import FramePipeline, MaskFilter, PreparedFrame

if TYPE_CHECKING:
    from engine.models.blackbox import BlackBox
    from engine.models.masker import Masker

TORCH_BACKENDS = ("tensorrt", "torch-cuda", "torch-cpu")


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
    if choice in ("tensorrt", "torch-cuda"):  # say it now, before torch loads (seconds) only to find out
        ok, reason = quick_availability(choice)
        if not ok:
            raise BackendUnavailableError(f"the {choice} backend cannot run here: {reason}")
    if choice == "auto" and nvidia_gpu_count() == 0:
        name, reason = preferred_cpu_runner()
        return RuntimePlan(True, name, f"{name}: {reason}; no tensorrt / torch-cuda (the CUDA driver sees no GPU)")
    return RuntimePlan(False, choice, "")


def quick_availability(choice: str) -> tuple[bool, str]:
    """(can run here, why) for a backend choice, without importing torch or TensorRT (for menus and a fast refusal):
    whether the runtime is installed and the CUDA driver sees a GPU. A True may still fail at set-up (a TensorRT
    that does not start, a model that does not build): the Explainer says so then."""
    if choice == "auto":
        return True, "the best backend that runs here"
    if choice in RUNNER_NAMES:
        return runner_availability(choice)
    if not torch_installed():
        return False, "PyTorch is not installed (pip install 'live-saliency[train]', or [gpu] for NVIDIA GPUs)"
    if choice == "torch-cpu":
        return True, "PyTorch on the CPU (the FP32 reference; slow)"
    if choice == "tensorrt":
        spec = importlib.util.find_spec("tensorrt")
        if spec is None or spec.origin is None:  # (only the type stubs: an empty namespace package)
            return False, "TensorRT is not installed (pip install tensorrt)"
    if nvidia_gpu_count() == 0:
        return False, "no NVIDIA GPU: the CUDA driver sees none"
    return True, f"{choice} on the NVIDIA GPU"


def torch_installed() -> bool:
    """Whether PyTorch can be imported here (without importing it): the training extra is installed."""
    return importlib.util.find_spec("torch") is not None


def backend_availability() -> dict[str, tuple[bool, str]]:
    """Every backend choice -> (can run here, why), torch-free (`quick_availability`)."""
    return {choice: quick_availability(choice) for choice in BACKEND_CHOICES}


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
        gate: float = GATE,
    ) -> None:
        self._settings(fill, opacity, evidence, gate)
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.exists():
            missing = "the bundled default model is missing" if path == DEFAULT_MODEL else "model file does not exist"
            raise ModelFileError(f"{missing}: {path}; pass a model file (models come from `python -m trainer train`)")
        plan = plan_runtime(backend)
        options = dict(backend_options or {})
        if plan.host:
            self._start_host(self._prepared_file(path, plan, options), plan, options)
        else:
            from engine.modelfiles.loading import load_masker  # torch loads here, and only on this path

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
        gate: float = GATE,
    ) -> Explainer:
        """An Explainer for a masker already in memory (e.g. an untrained one, for benchmarks and tests)."""
        explainer = cls.__new__(cls)
        explainer._settings(fill, opacity, evidence, gate)
        plan = plan_runtime(backend)
        options = dict(backend_options or {})
        if plan.host:
            from engine.export.prepare import prepare_masker

            explainer._start_host(prepare_masker(masker, blackbox, name), plan, options)
        else:
            explainer._start_torch(masker, blackbox, name, plan, batch_sizes, options)
        return explainer

    # -- set-up ---------------------------------------------------------------------------------------------------
    def _settings(self, fill: str, opacity: float, evidence: bool, gate: float) -> None:
        self.fill = check_fill(fill)
        self.opacity = check_opacity(opacity)
        self.evidence_on = bool(evidence)
        # a class asked for by index gets an empty mask where the black box gives it less than this
        # (engine.runtime.gate)
        self.gate = check_gate(gate)
        self.runner: Runner | None = None
        self.backend: Any = None  # the torch backend on the torch runtime

    def _prepared_file(self, path: Path, plan: RuntimePlan, options: dict[str, Any]) -> PreparedModel:
        """The graphs the CPU runtime runs for the model at `path`: exported with it, else exported here before
        (found without torch), else exported now (torch)."""
        self._model_path = path
        try:
            prepared = exported_graphs(path)
        except ModelFileError:
            if not torch_installed():
                raise
            prepared = None  # a damaged exported folder: the model file itself is exported below
        prepared = prepared or find(path)
        if prepared is not None:
            return prepared
        if not torch_installed():
            raise ModelFileError(
                f"{path.name} has no exported graphs, and this install has no PyTorch to export it. Either install "
                "the training extra (pip install 'live-saliency[train]'), or export the model where it is installed "
                f"(saliency-engine export {path.name} --out FOLDER) and open that folder."
            )
        from engine.export.prepare import prepare_model_file  # torch: the first time this file is used here

        return prepare_model_file(path)

    def _start_host(self, prepared: PreparedModel, plan: RuntimePlan, options: dict[str, Any]) -> None:
        threads = Threads(int(options.pop("threads", 0)), int(options.pop("evidence_threads", 0)))
        try:
            runner = create_runner(plan.name, prepared.onnx, threads, **options)
        except RunnerLoadError as error:  # a damaged cached export: forget it, export again, once
            if prepared.exported:  # checked against its hashes: not damaged, but not for this runtime
                raise ModelFileError(
                    f"{error}. The exported model was made for another version of the runtime: export it again "
                    "here (saliency-engine export MODEL.safetensors --out FOLDER)"
                ) from error
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
        self.pipeline: FramePipeline[Any, Any, Any] = FramePipeline(
            HostKernels(runner, prepared.input_size), prepared.classes
        )
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
        from engine.export.graphs import model_graphs
        from engine.runtime.device import DeviceKernels, TorchRunner

        graphs = model_graphs(masker.cpu(), blackbox.cpu(), name=name)
        # `auto` tries the backends in order and falls through one whose set-up fails, saying why
        self.backend, backend_name, reason = build_backend(plan.name, graphs, batch_sizes=batch_sizes, **options)
        self.backend_name, self.backend_reason = backend_name, reason
        self.model_description = graphs.name
        self.classes = blackbox.classes
        self.input_size = graphs.input_size
        if self.backend.device.type == "cpu":  # torch-cpu: the host kernels, the backend behind a runner
            self.runner = TorchRunner(self.backend)
            self.pipeline = FramePipeline(HostKernels(self.runner, graphs.input_size), blackbox.classes)
        else:
            self.pipeline = FramePipeline(DeviceKernels(self.backend, graphs.input_size), blackbox.classes)
        self.pipeline.warm_up()

    # -- explaining -----------------------------------------------------------------------------------------------
    def resolve(self, target: int | str) -> int:
        """A class index or AUTO from an index, AUTO, "auto", or a class name / wnid (UnknownClassError)."""
        return resolve_target(target, self.classes)

    def prepare(
        self,
        frame: np.ndarray,
        view_size: tuple[int, int] | None = None,
        *,
        region: Region | None = None,
        aspect: str = "stretch",
        fill: str | None = None,
    ) -> PreparedFrame:
        """The work on a frame that does not need the model (cutting, padding, resizing): can run ahead, in another
        thread. `region` (x0, y0, x1, y1): explain only that part of the frame; `aspect` (ASPECTS): a picture that
        is not square is stretched to the model's input or padded to a square first, in the colour of `fill`
        (engine.runtime.framing)."""
        fill = self.fill if fill is None else fill
        picture, content, size = framed(as_rgb_frame(frame), region, aspect, fill, view_size)
        prepared = self.pipeline.prepare(picture, size)
        return prepared if content is None else replace(prepared, content=content)

    def explain_prepared(
        self,
        prepared: PreparedFrame,
        target: int,
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
        mask_filter: MaskFilter | None = None,
    ) -> Explanation:
        """One prepared frame: the views at the size it was prepared for; evidence now only if asked. `mask_filter`:
        as in `explain_batch` (the app's live loop: the average over time)."""
        explanation = self.pipeline.run(
            [prepared],
            [self.resolve(target)],
            fill=self.fill if fill is None else fill,
            opacity=self.opacity if opacity is None else float(opacity),
            evidence=self.evidence_on if evidence is None else bool(evidence),
            mask_filter=mask_filter,
            gate=self.gate,
        )[0]
        return explanation if prepared.content is None else unpad(explanation, prepared.content)

    def explain(
        self,
        frame: np.ndarray,
        target: int | str = AUTO,
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
        view_size: tuple[int, int] | None = None,
        region: Region | None = None,
        aspect: str = "stretch",
    ) -> Explanation:
        """One (H, W, 3) uint8 RGB frame (grey and RGBA are converted) -> Explanation (views at full size, or at
        most `view_size`); `region` and `aspect` as in `prepare`."""
        prepared = self.prepare(frame, view_size, region=region, aspect=aspect, fill=fill)
        return self.explain_prepared(prepared, self.resolve(target), fill=fill, opacity=opacity, evidence=evidence)

    def explain_batch(
        self,
        frames: list[np.ndarray],
        targets: list[int | str],
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
        mask_filter: MaskFilter | None = None,
        aspect: str = "stretch",
        region: Region | None = None,
    ) -> list[Explanation]:
        """Same-sized frames in one batch (offline video), at full size; timings are per frame. `mask_filter`: a
        step between the model's masks and everything made from them (engine.video.sequence: the average over time).
        `aspect` and `region` as in `prepare`."""
        prepared = [self.prepare(frame, region=region, aspect=aspect, fill=fill) for frame in frames]
        explained = self.pipeline.run(
            prepared,
            [self.resolve(target) for target in targets],
            fill=self.fill if fill is None else fill,
            opacity=self.opacity if opacity is None else float(opacity),
            evidence=self.evidence_on if evidence is None else bool(evidence),
            mask_filter=mask_filter,
            gate=self.gate,
        )
        return [
            explanation if item.content is None else unpad(explanation, item.content)
            for item, explanation in zip(prepared, explained)
        ]

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
