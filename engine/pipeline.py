"""The frame pipeline: uint8 RGB frames -> explanations, on the backend's device.

    frames --preprocess--> model input (S x S) --backend "saliency"--> mask (S/4) + logits
           --composite--> mask at frame size, heat, overlay, preserved, destroyed (uint8, back on the host)
           --evidence (optional)--> black box on Phi(X, M) and Phi(X, 1 - M): the target's probabilities

CPU backends composite with OpenCV in uint8; GPU backends upload each frame once and composite with torch on the
GPU, so only the final uint8 views cross back. `run` takes a batch of same-sized frames (offline video).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from engine.backends.base import Backend
from engine.classes import resolve_class
from engine.composite import NumpyCompositor, TorchCompositor, Views, check_fill, mask_box
from engine.contract import AUTO, ClassInfo, Explanation
from engine.errors import UnknownClassError
from engine.graphs import ModelGraphs

__all__ = ["AUTO", "Explanation", "Pipeline", "as_rgb_frame", "resolve_target"]


def as_rgb_frame(frame: object) -> np.ndarray:
    """(H, W, 3) uint8 RGB from RGB, greyscale (H, W) / (H, W, 1) or RGBA (H, W, 4); ValueError otherwise."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"a frame must be a numpy array, not {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 (0..255), not {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"a frame must be (H, W, 3) RGB, (H, W) / (H, W, 1) grey or (H, W, 4) RGBA, not {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


def resolve_target(target: int | str, classes: tuple[ClassInfo, ...]) -> int:
    """A class index, "auto" (-1), or a class name / wnid."""
    if isinstance(target, str) and target.strip().lower() == "auto":
        return AUTO
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= int(target) < len(classes):
            raise UnknownClassError(f"class index {int(target)} is outside 0..{len(classes) - 1} of this black box")
        return int(target)
    if isinstance(target, str):
        return resolve_class(target, classes)
    raise UnknownClassError(f"a target is a class index, a class name or 'auto', not {target!r}")


class StageTimer:
    """Wall time per stage; on CUDA, events on the current stream (no synchronisation until the end)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[str, object]] = []
        self.mark("start")

    def mark(self, stage: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((stage, event))
        else:
            self.marks.append((stage, time.perf_counter()))

    def result(self, frames: int) -> dict[str, float]:
        """Milliseconds per stage and in total, divided by the number of frames in the batch."""
        timings: dict[str, float] = {}
        if self.cuda:
            self.marks[-1][1].synchronize()  # type: ignore[attr-defined]
        for (_, before), (stage, after) in zip(self.marks, self.marks[1:]):
            if self.cuda:
                elapsed = before.elapsed_time(after)  # type: ignore[attr-defined]
            else:
                elapsed = (after - before) * 1000  # type: ignore[operator]
            timings[stage] = timings.get(stage, 0.0) + elapsed / frames
        timings["total"] = sum(timings.values())
        return timings


class Pipeline:
    """Explains batches of frames with one backend (the backend is owned by the caller)."""

    def __init__(self, backend: Backend, graphs: ModelGraphs, classes: tuple[ClassInfo, ...]) -> None:
        self.backend = backend
        self.graphs = graphs
        self.classes = classes
        self.device = backend.device
        self.on_host = self.device.type == "cpu"
        self.numpy_ops = NumpyCompositor(graphs.input_size)
        self.torch_ops = None if self.on_host else TorchCompositor(graphs.input_size, self.device)

    def warm_up(self, size: tuple[int, int] = (480, 640)) -> None:
        frame = np.zeros((*size, 3), dtype=np.uint8)
        for batch in self.backend.batch_sizes:
            self.run([frame] * batch, [AUTO] * batch, evidence=batch == 1)

    def run(
        self,
        frames: list[np.ndarray],
        targets: list[int],
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
    ) -> list[Explanation]:
        """Explain same-sized (H, W, 3) uint8 RGB frames; targets are class indices or AUTO (-1)."""
        check_fill(fill)
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must lie in [0, 1], not {opacity}")
        if len(frames) != len(targets) or not frames:
            raise ValueError(f"{len(frames)} frames and {len(targets)} targets")
        shapes = {frame.shape for frame in frames}
        if len(shapes) != 1:
            raise ValueError(f"a batch needs frames of one size, got {sorted(shapes)}")
        if self.on_host:
            return self._run_host(frames, targets, fill, opacity, evidence)
        return self._run_device(frames, targets, fill, opacity, evidence)

    def _run_host(
        self, frames: list[np.ndarray], targets: list[int], fill: str, opacity: float, evidence: bool
    ) -> list[Explanation]:
        ops = self.numpy_ops
        timer = StageTimer(self.device)
        resized = ops.resize(frames)
        images = ops.model_input(resized)
        timer.mark("preprocess")
        # torch.from_numpy / .numpy() share memory: the host path does no torch arithmetic (see NumpyCompositor)
        feed = {"image": torch.from_numpy(images), "target": torch.from_numpy(np.asarray(targets, dtype=np.int64))}
        outputs = self.backend.infer("saliency", feed)
        mask_low = outputs["mask_low"][:, 0].numpy()  # (B, h, w)
        logits = outputs["logits"]
        timer.mark("model")
        fills = [ops.fill_low(small, fill) for small in resized]
        views = [ops.views(*args, opacity) for args in zip(frames, mask_low, fills)]
        timer.mark("composite")
        evidence_probs = None
        if evidence:
            inputs = np.concatenate(
                [ops.evidence_input(*args) for args in zip(images, mask_low, fills)]
            )  # (2B, 3, S, S): preserved, destroyed per frame
            evidence_logits = self.backend.infer("classifier", {"image": torch.from_numpy(inputs)})["logits"]
            evidence_probs = torch.softmax(evidence_logits, dim=1).view(len(frames), 2, -1)
            timer.mark("evidence")
        return self._explanations(frames, views, logits, evidence_probs, targets, timer)

    def _run_device(
        self, frames: list[np.ndarray], targets: list[int], fill: str, opacity: float, evidence: bool
    ) -> list[Explanation]:
        ops = self.torch_ops
        assert ops is not None
        timer = StageTimer(self.device)
        frames_device = ops.upload(frames)
        images = ops.model_input(frames_device)
        timer.mark("preprocess")
        target_tensor = torch.tensor(targets, dtype=torch.long).to(self.device, non_blocking=True)
        outputs = self.backend.infer("saliency", {"image": images, "target": target_tensor})
        timer.mark("model")
        fill_low = ops.fill_low(images, fill)
        views = ops.views(frames_device, outputs["mask_low"], fill_low, opacity)
        timer.mark("composite")
        evidence_probs = None
        if evidence:
            inputs = ops.evidence_input(images, outputs["mask_low"], fill_low)  # (2B, ...)
            evidence_logits = self.backend.infer("classifier", {"image": inputs})["logits"]
            batch = len(frames)
            probs = torch.softmax(evidence_logits, dim=1)
            evidence_probs = torch.stack([probs[:batch], probs[batch:]], dim=1)  # (B, 2, K)
            timer.mark("evidence")
        return self._explanations(frames, views, outputs["logits"], evidence_probs, targets, timer)

    def _explanations(
        self,
        frames: list[np.ndarray],
        views: list[Views],
        logits: torch.Tensor,
        evidence_probs: torch.Tensor | None,
        targets: list[int],
        timer: StageTimer,
    ) -> list[Explanation]:
        probs = torch.softmax(logits.float(), dim=1).cpu()  # (B, K)
        top_probs, top_indices = probs.topk(min(5, probs.shape[1]), dim=1)
        evidence_host = evidence_probs.cpu() if evidence_probs is not None else None
        timings = timer.result(len(frames))
        explained = []
        for index, (frame, view) in enumerate(zip(frames, views)):
            target = targets[index] if targets[index] != AUTO else int(top_indices[index, 0])
            probabilities = None
            if evidence_host is not None:
                probabilities = {
                    "frame": float(probs[index, target]),
                    "preserved": float(evidence_host[index, 0, target]),
                    "destroyed": float(evidence_host[index, 1, target]),
                }
            top5 = [
                (int(k), self.classes[int(k)].display_name, float(p))
                for k, p in zip(top_indices[index], top_probs[index])
            ]
            explained.append(
                Explanation(
                    frame=frame,
                    mask=view.mask,
                    overlay=view.overlay,
                    mask_image=view.mask_image,
                    preserved=view.preserved,
                    destroyed=view.destroyed,
                    target=target,
                    target_name=self.classes[target].display_name,
                    box=mask_box(view.mask),
                    top5=top5,
                    probabilities=probabilities,
                    timings_ms=dict(timings),
                )
            )
        return explained
