"""The frame pipeline on a GPU: each frame is uploaded once; preprocessing, the model, the mask's upsampling and
compositing run on the device (engine/runtime/composite_device.py), and only the final uint8 views come back in one
copy.

The same contract as the CPU pipeline (engine/runtime/host.py): `prepare`, `run`, `evidence`, `warm_up`. A torch
backend on the CPU (torch-cpu) runs through the CPU pipeline instead, behind `TorchRunner`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import torch

from engine.backends.base import Backend
from engine.contract import AUTO, ClassInfo, Explanation
from engine.runtime.composite_device import TorchCompositor
from engine.runtime.composite_host import check_fill, check_opacity, fit_size
from engine.runtime.gate import closed
from engine.runtime.host import MaskFilter, PreparedFrame, StageTimer, explanation_of, probabilities_of
from engine.runtime.runners import Runner


class TorchRunner(Runner):
    """A torch backend on the CPU as a runner (numpy in and out; the arrays share memory with the tensors)."""

    def __init__(self, backend: Backend) -> None:
        if backend.device.type != "cpu":
            raise ValueError(f"TorchRunner runs CPU backends; {backend.name} is on {backend.device}")
        self.backend = backend
        self.name = backend.name
        self._locks = {graph: threading.Lock() for graph in ("saliency", "classifier")}

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


class DevicePipeline:
    """Explains frames with a GPU backend (owned by the caller)."""

    def __init__(self, backend: Backend, input_size: int, classes: tuple[ClassInfo, ...]) -> None:
        self.backend = backend
        self.input_size = input_size
        self.classes = classes
        self.device = backend.device
        self.ops = TorchCompositor(input_size, self.device)
        # the live mask and the evidence check may call from two threads: one graph at a time each
        self._locks = {graph: threading.Lock() for graph in ("saliency", "classifier")}

    def warm_up(self, evidence: bool = True) -> None:
        frame = np.zeros((480, 640, 3), dtype=np.uint8)
        for batch in self.backend.batch_sizes:
            self.run([self.prepare(frame)] * batch, [AUTO] * batch, evidence=evidence and batch == 1)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None = None) -> PreparedFrame:
        """Nothing to do ahead on the host: resizing happens on the device. Records the views' size."""
        size = fit_size((frame.shape[1], frame.shape[0]), view_size)
        placeholder = np.empty((0, 0, 3), np.uint8)
        return PreparedFrame(frame, placeholder, placeholder, 0.0, shown_size=size)

    def _infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._locks[graph]:
            return self.backend.infer(graph, feed)

    def run(
        self,
        frames: list[PreparedFrame],
        targets: list[int],
        *,
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
        mask_filter: MaskFilter | None = None,
        gate: float = 0.0,
    ) -> list[Explanation]:
        check_fill(fill)
        check_opacity(opacity)
        if len(frames) != len(targets) or not frames:
            raise ValueError(f"{len(frames)} frames and {len(targets)} targets")
        if len({item.frame.shape for item in frames}) != 1:
            raise ValueError(f"a batch needs frames of one size, got {sorted({item.frame.shape for item in frames})}")
        ops = self.ops
        timer: DeviceStageTimer | StageTimer = DeviceStageTimer() if self.device.type == "cuda" else StageTimer()
        frames_device = ops.upload([item.frame for item in frames])
        images = ops.model_input(frames_device)  # (B, 3, S, S) in [0, 1]
        shown = ops.shown(frames_device, frames[0].shown_size)
        timer.mark("preprocess")
        target_tensor = torch.tensor(targets, dtype=torch.long).to(self.device, non_blocking=True)
        outputs = self._infer("saliency", {"image": images, "target": target_tensor})
        probs = torch.softmax(outputs["logits"].float(), dim=1).cpu().numpy()  # (B, K)
        chosen = [target if target != AUTO else int(probs[index].argmax()) for index, target in enumerate(targets)]
        shut = closed(probs, targets, chosen, gate)
        if shut.any():  # the gate (engine.runtime.gate): empty masks for classes the black box does not see
            kept = torch.from_numpy(~shut).to(self.device, dtype=outputs["mask_low"].dtype)
            outputs = {**outputs, "mask_low": outputs["mask_low"] * kept[:, None, None, None]}
        if mask_filter is not None:  # small masks: through the host and back
            masks = mask_filter(outputs["mask_low"][:, 0].float().cpu().numpy(), chosen)
            mask_low = torch.from_numpy(np.ascontiguousarray(masks[:, None], dtype=np.float32))
            outputs = {**outputs, "mask_low": mask_low.to(self.device)}
        timer.mark("model")
        fill_low = ops.fill_low(images, fill)
        views = ops.views(shown, outputs["mask_low"], fill_low, opacity)
        model_images = ops.to_host_images(images)
        timer.mark("composite")
        checked: list[dict[str, float] | None] = [None] * len(frames)
        if evidence:
            inputs = ops.evidence_input(images, outputs["mask_low"], fill_low)  # (2B, ...): preserved, then destroyed
            evidence_probs = torch.softmax(self._infer("classifier", {"image": inputs})["logits"], dim=1).cpu()
            batch = len(frames)
            checked = [
                probabilities_of(probs[index, target], evidence_probs[[index, batch + index], target].numpy())
                for index, target in enumerate(chosen)
            ]
            timer.mark("evidence")
        timings = timer.result(len(frames))
        masks_low = outputs["mask_low"][:, 0].float().cpu().numpy()
        return [
            explanation_of(
                item,
                view,
                target,
                probs[index],
                self.classes,
                checked=checked[index],
                timings=timings,
                mask_low=masks_low[index],
                model_image=model_images[index],
                fill=fill,
                opacity=opacity,
            )
            for index, (item, view, target) in enumerate(zip(frames, views, chosen))
        ]

    def evidence(self, explanation: Explanation) -> dict[str, float]:
        """The evidence check of an explanation made earlier (the live stream's second pass)."""
        ops = self.ops
        image = torch.from_numpy(explanation.model_image[None]).to(self.device)
        images = image.permute(0, 3, 1, 2).float().div_(255)
        mask_low = torch.from_numpy(np.ascontiguousarray(explanation.mask_low[None, None])).to(self.device)
        inputs = ops.evidence_input(images, mask_low, ops.fill_low(images, explanation.fill))
        probs = torch.softmax(self._infer("classifier", {"image": inputs})["logits"], dim=1).cpu()
        return probabilities_of(explanation.target_probability, probs[:, explanation.target].numpy())
