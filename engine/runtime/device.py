"""The stages' kernels on a torch backend's device (engine/runtime/stages.py), for the GPU backends: each frame is
uploaded once; preprocessing, the model, the mask's upsampling and compositing run on the device
(engine/runtime/composite_device.py), and only the final uint8 views come back, in one copy.

A torch backend on the CPU (torch-cpu) runs with the host kernels instead, behind `TorchRunner`. The backend is any
object with a torch backend's `infer` (engine.backends.base.Backend): this package sits below the backends.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch

from engine.runtime.composite_device import TorchCompositor
from engine.runtime.composite_host import Views, fit_size
from engine.runtime.runners import Runner
from engine.runtime.stages import PreparedFrame, StageTimer

GRAPHS = ("saliency", "classifier")


class TorchBackend(Protocol):
    """What the kernels use of a torch backend (engine.backends.base.Backend)."""

    name: str
    device: torch.device
    batch_sizes: tuple[int, ...]

    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class TorchRunner(Runner):
    """A torch backend on the CPU as a runner (numpy in and out; the arrays share memory with the tensors)."""

    def __init__(self, backend: TorchBackend) -> None:
        if backend.device.type != "cpu":
            raise ValueError(f"TorchRunner runs CPU backends; {backend.name} is on {backend.device}")
        self.backend = backend
        self.name = backend.name
        self._locks = {graph: threading.Lock() for graph in GRAPHS}

    def run(self, graph: str, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._locks[graph]:
            outputs = self.backend.infer(graph, {name: torch.from_numpy(array) for name, array in feed.items()})
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    def describe(self) -> str:
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()


class DeviceStageTimer:
    """Milliseconds per stage from CUDA events on the current stream (one synchronisation, at the end)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, torch.cuda.Event]] = []
        self.mark("start")

    def mark(self, stage: str) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self.marks.append((stage, event))

    def result(self, frames: int) -> dict[str, float]:
        self.marks[-1][1].synchronize()
        timings: dict[str, float] = {}
        for (_, before), (stage, after) in zip(self.marks, self.marks[1:]):
            timings[stage] = timings.get(stage, 0.0) + before.elapsed_time(after) / frames
        timings["total"] = sum(timings.values())
        return timings


class DeviceKernels:
    """The stages with `backend` (owned by the caller) on its device. Images (B, 3, S, S) float in [0, 1], masks
    (B, 1, h, w) and fills stay on the device."""

    def __init__(self, backend: TorchBackend, input_size: int) -> None:
        self.backend = backend
        self.input_size = input_size
        self.batch_sizes = tuple(backend.batch_sizes)
        self.device = backend.device
        self.ops = TorchCompositor(input_size, self.device)
        # the live mask and the evidence check may call from two threads: one graph at a time each
        self._locks = {graph: threading.Lock() for graph in GRAPHS}

    def _infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._locks[graph]:
            return self.backend.infer(graph, feed)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None) -> PreparedFrame:
        """Nothing to do ahead on the host: resizing happens on the device. Records the views' size."""
        size = fit_size((frame.shape[1], frame.shape[0]), view_size)
        placeholder = np.empty((0, 0, 3), np.uint8)
        return PreparedFrame(frame, placeholder, placeholder, 0.0, shown_size=size)

    def timer(self, frames: Sequence[PreparedFrame]) -> DeviceStageTimer | StageTimer:
        return DeviceStageTimer() if self.device.type == "cuda" else StageTimer()

    def model_input(self, frames: Sequence[PreparedFrame]) -> tuple[torch.Tensor, torch.Tensor]:
        uploaded = self.ops.upload([item.frame for item in frames])
        return self.ops.model_input(uploaded), self.ops.shown(uploaded, frames[0].shown_size)

    def saliency(self, images: torch.Tensor, targets: list[int]) -> tuple[torch.Tensor, np.ndarray]:
        target_tensor = torch.tensor(targets, dtype=torch.long).to(self.device, non_blocking=True)
        outputs = self._infer("saliency", {"image": images, "target": target_tensor})
        return outputs["mask_low"], torch.softmax(outputs["logits"].float(), dim=1).cpu().numpy()

    def emptied(self, masks: torch.Tensor, shut: np.ndarray) -> torch.Tensor:
        kept = torch.from_numpy(~shut).to(self.device, dtype=masks.dtype)
        return masks * kept[:, None, None, None]

    def to_host(self, masks: torch.Tensor) -> np.ndarray:
        return masks[:, 0].float().cpu().numpy()

    def from_host(self, masks: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(masks[:, None], dtype=np.float32)).to(self.device)

    def fills(self, images: torch.Tensor, fill: str) -> torch.Tensor:
        return self.ops.fill_low(images, fill)

    def views(self, shown: torch.Tensor, masks: torch.Tensor, fills: torch.Tensor, opacity: float) -> list[Views]:
        return self.ops.views(shown, masks, fills, opacity)

    def model_images(self, images: torch.Tensor) -> list[np.ndarray]:
        return list(self.ops.to_host_images(images))

    def images_of(self, model_images: list[np.ndarray]) -> torch.Tensor:
        uploaded = torch.from_numpy(np.stack(model_images)).to(self.device)
        return uploaded.permute(0, 3, 1, 2).float().div_(255)

    def evidence(self, images: torch.Tensor, masks: torch.Tensor, fills: torch.Tensor) -> np.ndarray:
        inputs = self.ops.evidence_input(images, masks, fills)  # (2B, ...): preserved, then destroyed
        probs = torch.softmax(self._infer("classifier", {"image": inputs})["logits"], dim=1).cpu().numpy()
        return probs.reshape(2, len(images), -1).transpose(1, 0, 2)  # (B, 2, K)
