"""The stages' kernels on the CPU (engine/runtime/stages.py): numpy and OpenCV around a runner
(engine/runtime/runners.py: ONNX Runtime or OpenVINO; torch-cpu behind engine.runtime.device.TorchRunner). No torch.

`prepare` resizes ahead, in the thread that decodes: the model's S x S image from the frame itself and the frame at
the views' size. The views are composed per frame at that size (engine/runtime/composite_host.py); the evidence
inputs, Phi(X, M) and Phi(X, 1 - M) at S x S, go to the classifier graph in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine.runtime.composite_host import HostCompositor, Views, fit_size, resize_to, softmax
from engine.runtime.runners import Runner
from engine.runtime.stages import PreparedFrame, StageTimer

HostMasks = np.ndarray  # (B, h, w) float32
HostFills = list[np.ndarray | float]  # per frame: the blurred image at S/4, or a constant in 0..255


class HostImages(NamedTuple):
    batch: np.ndarray  # (B, 3, S, S) float32 in [0, 1]: the model's input
    uint8: list[np.ndarray]  # the same images, (S, S, 3) uint8, as resized (the blur fill is made from these)


class HostKernels:
    """The stages on the CPU with `runner` (owned by the caller)."""

    batch_sizes: tuple[int, ...] = (1,)

    def __init__(self, runner: Runner, input_size: int) -> None:
        self.runner = runner
        self.input_size = input_size
        self.ops = HostCompositor(input_size)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None) -> PreparedFrame:
        """The model's S x S image and the frame at the views' size (`view_size`: at most this; None: full size)."""
        start = time.perf_counter()
        shown_size = fit_size((frame.shape[1], frame.shape[0]), view_size)
        shown = resize_to(frame, shown_size)
        # from the frame itself, never from the smaller picture: the model sees exactly what it sees offline, so a
        # live mask is the offline mask, only shown smaller (resizing twice moved an untrained mask by 0.04)
        model_image = self.ops.model_image(frame)
        return PreparedFrame(frame, model_image, shown, (time.perf_counter() - start) * 1000, shown_size)

    def timer(self, frames: Sequence[PreparedFrame]) -> StageTimer:
        return StageTimer({"preprocess": sum(item.prepare_ms for item in frames)})  # the resizing, done ahead

    def model_input(self, frames: Sequence[PreparedFrame]) -> tuple[HostImages, list[np.ndarray]]:
        uint8 = [item.model_image for item in frames]
        return HostImages(self.ops.model_input(uint8), uint8), [item.shown for item in frames]

    def saliency(self, images: HostImages, targets: list[int]) -> tuple[HostMasks, np.ndarray]:
        outputs = self.runner.run("saliency", {"image": images.batch, "target": np.asarray(targets, dtype=np.int64)})
        return outputs["mask_low"][:, 0], softmax(outputs["logits"])

    def emptied(self, masks: HostMasks, shut: np.ndarray) -> HostMasks:
        return np.where(shut[:, None, None], np.float32(0), masks)

    def to_host(self, masks: HostMasks) -> np.ndarray:
        return masks

    def from_host(self, masks: np.ndarray) -> HostMasks:
        return np.ascontiguousarray(masks, dtype=np.float32)

    def fills(self, images: HostImages, fill: str) -> HostFills:
        return [self.ops.fill_low(image, fill) for image in images.uint8]

    def views(self, shown: list[np.ndarray], masks: HostMasks, fills: HostFills, opacity: float) -> list[Views]:
        return [self.ops.views(frame, mask, low, opacity) for frame, mask, low in zip(shown, masks, fills)]

    def model_images(self, images: HostImages) -> list[np.ndarray]:
        return images.uint8

    def images_of(self, model_images: list[np.ndarray]) -> HostImages:
        return HostImages(self.ops.model_input(model_images), model_images)

    def evidence(self, images: HostImages, masks: HostMasks, fills: HostFills) -> np.ndarray:
        inputs = np.concatenate([self.ops.evidence_input(*args) for args in zip(images.batch, masks, fills)])
        logits = self.runner.run("classifier", {"image": inputs})["logits"]
        return softmax(logits).reshape(len(masks), 2, -1)  # preserved, destroyed per frame
