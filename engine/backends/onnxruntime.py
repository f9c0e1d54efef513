"""ONNX Runtime backend: the exported FP32 graphs (cached by model hash) on the CPU, or the CUDA provider when
onnxruntime-gpu is installed (then torch CUDA tensors are bound in place through IO binding)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.backends.base import DEFAULT_BATCH_SIZES, Availability, Backend, check_graph
from engine.errors import BackendUnavailableError
from engine.export.cache import cached_onnx
from engine.export.graphs import ModelGraphs

_OUTPUTS = {"saliency": ("mask_low", "logits"), "classifier": ("logits",)}


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime with full graph optimisation; `threads` intra-op threads (0: all cores).

    `spinning` lets idle pool threads busy-wait for the next op: a little lower latency on an idle machine, but on
    a busy one (a GUI, a video decoder, other programs) it burns the cores others need; measured on our shared
    2-core machine: 31 masks/s with spinning vs 61 without (2 threads). Off by default.
    """

    name = "onnxruntime"

    def __init__(
        self,
        graphs: ModelGraphs,
        batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
        threads: int = 0,
        precision: str = "fp32",
        provider: str = "auto",
        cache_root: Path | None = None,
        spinning: bool = False,
    ) -> None:
        super().__init__(graphs, batch_sizes)
        import onnxruntime as ort

        self.use_cuda = _wants_cuda(provider, ort.get_available_providers())
        self.device = torch.device("cuda", torch.cuda.current_device()) if self.use_cuda else torch.device("cpu")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.use_cuda else ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.threads = options.intra_op_num_threads
        self.spinning = spinning
        self.precision = precision
        self.sessions: dict[str, Any] = {}
        for graph in _OUTPUTS:
            path = cached_onnx(graphs, graph, precision, cache_root)
            try:
                self.sessions[graph] = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as error:  # noqa: BLE001 (ORT raises its own untyped errors for damaged files)
                path.unlink(missing_ok=True)  # the cache entry is unusable: export it afresh once
                path = cached_onnx(graphs, graph, precision, cache_root)
                try:
                    self.sessions[graph] = ort.InferenceSession(str(path), options, providers=providers)
                except Exception as second:  # noqa: BLE001
                    raise BackendUnavailableError(f"onnxruntime cannot load {path}: {second}") from error

    @classmethod
    def availability(cls) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as error:
            return Availability(False, f"onnxruntime is not installed ({error})")
        providers = ort.get_available_providers()
        where = "CUDA provider" if _wants_cuda("auto", providers) else "CPU"
        return Availability(True, f"onnxruntime {ort.__version__} on the {where}")

    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_graph(graph)
        if self.use_cuda:
            return self._infer_cuda(graph, feed)
        arrays = {name: tensor.numpy() for name, tensor in feed.items()}
        results = self.sessions[graph].run(list(_OUTPUTS[graph]), arrays)
        return {name: torch.from_numpy(array) for name, array in zip(_OUTPUTS[graph], results)}

    def _infer_cuda(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Bind torch CUDA tensors in place: inputs and outputs never leave the GPU."""
        session = self.sessions[graph]
        binding = session.io_binding()
        batch = feed["image"].shape[0]
        index = self.device.index or 0
        for name, tensor in feed.items():
            tensor = tensor.contiguous()
            dtype = np.int64 if tensor.dtype == torch.long else np.float32
            binding.bind_input(name, "cuda", index, dtype, list(tensor.shape), tensor.data_ptr())
        shapes = {
            "mask_low": (batch, 1, self.graphs.mask_size, self.graphs.mask_size),
            "logits": (batch, self.graphs.num_classes),
        }
        outputs = {name: torch.empty(shapes[name], device=self.device) for name in _OUTPUTS[graph]}
        for name, tensor in outputs.items():
            binding.bind_output(name, "cuda", index, np.float32, list(tensor.shape), tensor.data_ptr())
        torch.cuda.current_stream().synchronize()  # ORT runs on its own stream: inputs must be ready
        session.run_with_iobinding(binding)
        return outputs

    def describe(self) -> str:
        where = (
            "CUDA provider" if self.use_cuda else f"CPU, {self.threads} threads{', spinning' if self.spinning else ''}"
        )
        return f"onnxruntime {self.precision.upper()} ({where})"

    def close(self) -> None:
        self.sessions.clear()


def _wants_cuda(provider: str, available: list[str]) -> bool:
    if provider not in ("auto", "cpu", "cuda"):
        raise ValueError(f"provider must be auto, cpu or cuda, not {provider!r}")
    has_cuda = "CUDAExecutionProvider" in available and torch.cuda.is_available()
    if provider == "cuda" and not has_cuda:
        raise BackendUnavailableError("onnxruntime's CUDA provider needs onnxruntime-gpu and an NVIDIA GPU")
    return has_cuda if provider == "auto" else provider == "cuda"
