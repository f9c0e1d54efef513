"""CPU runtimes that run the exported ONNX graphs on numpy arrays, without torch: ONNX Runtime and OpenVINO.

A runner runs a model's two graphs (engine/export/graphs.py): "saliency" (image (B, 3, S, S) float32 in [0, 1], target
(B,) int64; AUTO = -1 decides inside the graph) -> mask_low (B, 1, S/4, S/4), logits (B, K); and "classifier" (image)
-> logits, for the evidence check. Both are FP32: what runs is the model as trained, to float rounding
(engine/tolerances.py).

The two graphs may run at the same time from two threads (the live mask in one, the evidence check in another):
ONNX Runtime sessions are safe for that; OpenVINO's infer requests are not, so each graph has its own request and
its own lock. Thread counts are per graph, so that the live pipeline can give each stream one core of two.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.closing import Closing
from engine.errors import BackendUnavailableError

GRAPH_OUTPUTS: dict[str, tuple[str, ...]] = {"saliency": ("mask_low", "logits"), "classifier": ("logits",)}
RUNNER_NAMES = ("onnxruntime", "openvino")


class RunnerLoadError(BackendUnavailableError):
    """An ONNX file the runtime cannot load (damaged cache entry): the caller exports it again once."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Threads:
    """Intra-op threads per graph (0: as many as the machine has cores)."""

    saliency: int = 0
    classifier: int = 0

    def of(self, graph: str) -> int:
        count = self.saliency if graph == "saliency" else self.classifier
        return count or (os.cpu_count() or 1)


class Runner(Closing):
    name = ""

    def run(self, graph: str, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs of `graph` by name (float32), for inputs by name."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def _check_graph(graph: str) -> None:
    if graph not in GRAPH_OUTPUTS:
        raise ValueError(f"unknown graph {graph!r}; runners run {tuple(GRAPH_OUTPUTS)}")


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime on the CPU, full graph optimisation.

    `spinning` lets idle pool threads busy-wait for the next op: a little lower latency on an idle machine, but on a
    busy one (a GUI, a video decoder, other programs) it burns the cores others need; measured on our shared 2-core
    machine: 31 masks/s with spinning vs 61 without (2 threads). Off by default.
    """

    name = "onnxruntime"

    def __init__(self, onnx: Mapping[str, Path], threads: Threads = Threads(), spinning: bool = False) -> None:
        import onnxruntime as ort

        self.threads = threads
        self.spinning = spinning
        self.sessions: dict[str, Any] = {}
        for graph, path in onnx.items():
            _check_graph(graph)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads.of(graph)
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
            try:
                self.sessions[graph] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # noqa: BLE001 (ORT raises its own untyped errors for damaged files)
                raise RunnerLoadError(f"onnxruntime cannot load {path}: {error}", Path(path)) from error

    def run(self, graph: str, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_graph(graph)
        names = GRAPH_OUTPUTS[graph]
        results = self.sessions[graph].run(list(names), dict(feed))
        return dict(zip(names, results))

    def describe(self) -> str:
        threads = f"{self.threads.of('saliency')}+{self.threads.of('classifier')} threads"
        return f"onnxruntime FP32 (CPU, {threads}{', spinning' if self.spinning else ''})"

    def close(self) -> None:
        self.sessions.clear()


class OpenVinoRunner(Runner):
    """OpenVINO on the CPU, in FP32: its CPU plugin would otherwise run in bf16 on CPUs that have it (AVX-512 BF16,
    AMX), measured here as mask differences up to 0.69: another model, not the one trained."""

    name = "openvino"

    def __init__(self, onnx: Mapping[str, Path], threads: Threads = Threads()) -> None:
        import openvino as ov

        self.threads = threads
        core = ov.Core()
        self.requests: dict[str, Any] = {}
        self.locks: dict[str, threading.Lock] = {}
        for graph, path in onnx.items():
            _check_graph(graph)
            config = {
                "INFERENCE_NUM_THREADS": threads.of(graph),
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            }
            try:
                compiled = core.compile_model(str(path), "CPU", config)
            except Exception as error:  # noqa: BLE001 (OpenVINO raises RuntimeError subclasses of its own)
                raise RunnerLoadError(f"openvino cannot load {path}: {error}", Path(path)) from error
            self.requests[graph] = compiled.create_infer_request()
            self.locks[graph] = threading.Lock()

    def run(self, graph: str, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _check_graph(graph)
        request = self.requests[graph]
        with self.locks[graph]:
            request.infer(dict(feed))
            # copies: the request's output buffers are reused by the next call
            return {name: np.array(request.get_tensor(name).data) for name in GRAPH_OUTPUTS[graph]}

    def describe(self) -> str:
        return f"openvino FP32 (CPU, {self.threads.of('saliency')}+{self.threads.of('classifier')} threads)"

    def close(self) -> None:
        self.requests.clear()


def runner_availability(name: str) -> tuple[bool, str]:
    """(can run here, why); never raises. Imports the runtime (both are cheap: ~0.1 s)."""
    if name == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError as error:
            return False, f"onnxruntime is not installed ({error})"
        return True, f"onnxruntime {ort.__version__} on the CPU"
    if name == "openvino":
        try:
            import openvino as ov
        except ImportError as error:
            return False, f"OpenVINO is not installed (pip install openvino): {error}"
        return True, f"OpenVINO {ov.get_version().split('-')[0]} on the CPU (FP32)"
    return False, f"{name!r} is not a CPU runner ({', '.join(RUNNER_NAMES)})"


def create_runner(name: str, onnx: Mapping[str, Path], threads: Threads = Threads(), **options: Any) -> Runner:
    if name == "onnxruntime":
        return OnnxRuntimeRunner(onnx, threads, **options)
    if name == "openvino":
        return OpenVinoRunner(onnx, threads)
    raise BackendUnavailableError(f"{name!r} is not a CPU runner ({', '.join(RUNNER_NAMES)})")
