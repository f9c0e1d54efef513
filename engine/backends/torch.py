"""PyTorch backends: `torch-cpu` (FP32 eager, the reference) and `torch-cuda` (FP16, channels_last, CUDA graphs)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import nn

from engine.backends.base import DEFAULT_BATCH_SIZES, Availability, Backend, check_graph
from engine.errors import BackendUnavailableError
from engine.export.graphs import HalfGraph, ModelGraphs, with_static_padding

log = logging.getLogger(__name__)


def _outputs(graph: str, result: torch.Tensor | tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    if graph == "saliency":
        mask_low, logits = result
        return {"mask_low": mask_low.float(), "logits": logits.float()}
    assert isinstance(result, torch.Tensor)
    return {"logits": result.float()}


class TorchCpuBackend(Backend):
    """The model as trained: FP32 eager PyTorch on the CPU. The reference every other backend is checked against."""

    name = "torch-cpu"
    device = torch.device("cpu")

    def __init__(
        self, graphs: ModelGraphs, batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES, threads: int = 0
    ) -> None:
        super().__init__(graphs, batch_sizes)
        if threads > 0:
            torch.set_num_threads(threads)
        self.modules: dict[str, nn.Module] = {"saliency": graphs.saliency, "classifier": graphs.classifier}

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, f"PyTorch {torch.__version__} on the CPU ({torch.get_num_threads()} threads)")

    @torch.inference_mode()
    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_graph(graph)
        return _outputs(graph, self.modules[graph](**feed))


class _CapturedGraph:
    """One CUDA graph for one (graph, batch size): static input buffers, replayed per call."""

    def __init__(self, module: nn.Module, example: dict[str, torch.Tensor]) -> None:
        self.inputs = {name: tensor.clone() for name, tensor in example.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                module(**self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = module(**self.inputs)

    def __call__(self, feed: dict[str, torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        for name, tensor in feed.items():
            self.inputs[name].copy_(tensor)
        self.graph.replay()
        if isinstance(self.outputs, torch.Tensor):
            return self.outputs.clone()
        return tuple(output.clone() for output in self.outputs)


def _cpu_example(graph: str, input_size: int) -> dict[str, torch.Tensor]:
    feed = {"image": torch.rand(1, 3, input_size, input_size)}
    if graph == "saliency":
        feed["target"] = torch.full((1,), -1, dtype=torch.long)
    return feed


class TorchCudaBackend(Backend):
    """FP16 PyTorch on an NVIDIA GPU: half model, channels_last, one CUDA graph per batch size.

    Batch sizes that were not captured (or a capture that fails) run eagerly; a failed capture is logged once.
    `precision="fp32", cuda_graphs=False` is plain eager FP32: the benchmark's reference on the GPU.
    """

    name = "torch-cuda"

    def __init__(
        self,
        graphs: ModelGraphs,
        batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
        cuda_graphs: bool = True,
        precision: str = "fp16",
    ) -> None:
        super().__init__(graphs, batch_sizes)
        available = self.availability()
        if not available.ok:
            raise BackendUnavailableError(f"torch-cuda: {available.reason}")
        self.device = torch.device("cuda", torch.cuda.current_device())
        torch.backends.cudnn.benchmark = True
        if precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be fp16 or fp32, not {precision!r}")
        self.precision = precision
        wrap: Callable[[nn.Module], nn.Module] = HalfGraph if precision == "fp16" else (lambda module: module)
        self.modules: dict[str, nn.Module] = {}
        for graph, module in (("saliency", graphs.saliency), ("classifier", graphs.classifier)):
            if precision == "fp16":  # a copy with constant 'same' paddings (FP32 eager stays the model as is)
                module = with_static_padding(module, _cpu_example(graph, graphs.input_size))
            else:  # a copy: moving the caller's modules would change the CPU reference under its feet
                module = copy.deepcopy(module)
            self.modules[graph] = wrap(module).to(self.device).eval()
        self.captured: dict[tuple[str, int], Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]] = {}
        self.notes: list[str] = []
        if cuda_graphs:
            self._capture_all()

    @classmethod
    def availability(cls) -> Availability:
        if not torch.cuda.is_available():
            built = torch.version.cuda
            why = "no NVIDIA GPU visible to PyTorch" if built else "this PyTorch build has no CUDA"
            return Availability(False, why)
        return Availability(True, f"{torch.cuda.get_device_name()} (PyTorch {torch.__version__}, FP16)")

    def _example(self, graph: str, batch: int) -> dict[str, torch.Tensor]:
        size = self.graphs.input_size
        feed = {"image": torch.rand(batch, 3, size, size, device=self.device)}
        if graph == "saliency":
            feed["target"] = torch.full((batch,), -1, dtype=torch.long, device=self.device)
        return feed

    @torch.inference_mode()
    def _capture_all(self) -> None:
        sizes = {
            "saliency": self.batch_sizes,
            "classifier": (2,),
        }  # the evidence check runs 2 images per frame
        for graph, batches in sizes.items():
            for batch in batches:
                try:
                    self.captured[(graph, batch)] = _CapturedGraph(self.modules[graph], self._example(graph, batch))
                except RuntimeError as error:  # capture is an optimisation: eager still gives the right answer
                    note = f"CUDA graph capture failed for {graph} batch {batch}, running eagerly: {error}"
                    log.warning(note)
                    self.notes.append(note)

    @torch.inference_mode()
    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_graph(graph)
        batch = feed["image"].shape[0]
        captured = self.captured.get((graph, batch))
        result = captured(feed) if captured is not None else self.modules[graph](**feed)
        return _outputs(graph, result)

    def describe(self) -> str:
        graphs = sorted(f"{graph}@{batch}" for graph, batch in self.captured)
        layout = " channels_last" if self.precision == "fp16" else ""
        return f"torch-cuda {self.precision.upper()}{layout}, CUDA graphs: {', '.join(graphs) or 'none (eager)'}"

    def close(self) -> None:
        self.captured.clear()
        self.modules.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
