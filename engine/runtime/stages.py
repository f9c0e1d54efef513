"""The frame pipeline's stages, written once: prepared frames and their classes in, Explanations out.

    frames --input--> the model's images (S x S) + the frames at the size they are shown
           --saliency graph--> masks (S/4) + the black box's probabilities
           --classes--> each frame's class ("auto": the black box's top one); the gate empties the mask of a class
                        the black box does not see (engine.runtime.gate)
           --mask filter (optional)--> e.g. the average over time (engine.runtime.temporal)
           --compose--> mask, heat map, overlay, preserved, destroyed at the views' size
           --evidence (optional, now or later)--> the black box on Phi(X, M) and Phi(X, 1 - M)

`FramePipeline` runs them with one set of `Kernels`: how each stage is computed where the arrays live. Two sets exist:
`HostKernels` (engine/runtime/host.py: numpy and OpenCV around a CPU runner, no torch) and `DeviceKernels`
(engine/runtime/device.py: torch on the backend's device, the frame uploaded once). The order of the stages, the
choices between them and what an Explanation holds are here, for both; the kernels only compute (the agreement
tests check that both compute the same pictures and numbers).

`prepare` is separate so that a decoding thread can do it ahead of the model (the live pipeline overlaps it with the
previous frame's model); `evidence` is separate so that the live check can run later, in its own thread, on the
explanation alone (it holds the model's input and mask).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from engine.contract import AUTO, ClassInfo, Explanation
from engine.runtime.composite_host import Views, check_fill, check_opacity, mask_box
from engine.runtime.gate import closed


@dataclass(frozen=True)
class PreparedFrame:
    """A frame made ready for the model (and for display) before its turn: what `prepare` costs, done ahead."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB, as read
    model_image: np.ndarray  # (S, S, 3) uint8 (the host kernels; empty where the device resizes)
    shown: np.ndarray  # the frame at the views' size (the frame itself when shown at full size; empty on a device)
    prepare_ms: float
    shown_size: tuple[int, int] = (0, 0)  # (width, height) of the views
    # where the picture lies in `frame` when padded (engine.runtime.framing)
    content: tuple[int, int, int, int] | None = None


MaskFilter = Callable[[np.ndarray, list[int]], np.ndarray]
"""(B, h, w) float32 low-resolution masks and their classes -> masks: a step between the model and everything made
from its masks (views, box, evidence), e.g. engine.runtime.temporal's average over time."""


class Timer(Protocol):
    def mark(self, stage: str) -> None: ...

    def result(self, frames: int) -> dict[str, float]: ...


class StageTimer:
    """Milliseconds per stage of one batch, per frame, by the host's clock."""

    def __init__(self, already: dict[str, float] | None = None) -> None:
        self.timings = dict(already or {})
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._last) * 1000
        self._last = now

    def result(self, frames: int) -> dict[str, float]:
        timings = {stage: ms / frames for stage, ms in self.timings.items()}
        timings["total"] = sum(timings.values())
        return timings


Images = TypeVar("Images")  # the model's input batch where the kernels keep it
Masks = TypeVar("Masks")  # the low-resolution masks (B, ...) where the kernels keep them
Fills = TypeVar("Fills")  # the fill A of Phi(X, M) at low resolution, per frame or per batch


class Kernels(Protocol[Images, Masks, Fills]):
    """How each stage is computed where the arrays live (numpy on the host, torch on a device)."""

    input_size: int
    batch_sizes: tuple[int, ...]  # the batch sizes worth warming up

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None) -> PreparedFrame: ...

    def timer(self, frames: Sequence[PreparedFrame]) -> Timer: ...

    def model_input(self, frames: Sequence[PreparedFrame]) -> tuple[Images, Any]:
        """The model's images (B, 3, S, S) in [0, 1] and the frames at the views' size."""
        ...

    def saliency(self, images: Images, targets: list[int]) -> tuple[Masks, np.ndarray]:
        """The masks and the black box's probabilities (B, K) on the host."""
        ...

    def emptied(self, masks: Masks, shut: np.ndarray) -> Masks:
        """The masks with those of the frames where `shut` (B,) is True set to zero."""
        ...

    def to_host(self, masks: Masks) -> np.ndarray:
        """(B, h, w) float32."""
        ...

    def from_host(self, masks: np.ndarray) -> Masks: ...

    def fills(self, images: Images, fill: str) -> Fills: ...

    def views(self, shown: Any, masks: Masks, fills: Fills, opacity: float) -> list[Views]: ...

    def model_images(self, images: Images) -> list[np.ndarray]:
        """What the model saw, (S, S, 3) uint8 on the host: kept in an Explanation for its evidence check later."""
        ...

    def images_of(self, model_images: list[np.ndarray]) -> Images:
        """The model's input batch again from the kept (S, S, 3) uint8 images."""
        ...

    def evidence(self, images: Images, masks: Masks, fills: Fills) -> np.ndarray:
        """The black box's probabilities (B, 2, K) on Phi(X, M) and Phi(X, 1 - M) of each frame."""
        ...


class FramePipeline(Generic[Images, Masks, Fills]):
    """Explains frames with one set of kernels (which own the runner or the backend; the caller owns those)."""

    def __init__(self, kernels: Kernels[Images, Masks, Fills], classes: tuple[ClassInfo, ...]) -> None:
        self.kernels = kernels
        self.classes = classes
        self.input_size = kernels.input_size

    def warm_up(self, evidence: bool = True) -> None:
        """One pass per batch size (the runtimes allocate and pick kernels on their first call)."""
        frame = np.zeros((480, 640, 3), dtype=np.uint8)
        for batch in self.kernels.batch_sizes:
            self.run([self.prepare(frame)] * batch, [AUTO] * batch, evidence=evidence and batch == 1)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None = None) -> PreparedFrame:
        """What can be done ahead (`view_size`: the views at most this size; None: full size)."""
        return self.kernels.prepare(frame, view_size)

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
        """Explain prepared frames of one size; targets are class indices or AUTO. `gate`: the mask of a class asked
        for by index is emptied where the black box gives it less than this (engine.runtime.gate)."""
        check_fill(fill)
        check_opacity(opacity)
        if len(frames) != len(targets) or not frames:
            raise ValueError(f"{len(frames)} frames and {len(targets)} targets")
        if len({item.frame.shape for item in frames}) != 1:
            raise ValueError(f"a batch needs frames of one size, got {sorted({item.frame.shape for item in frames})}")
        kernels = self.kernels
        timer = kernels.timer(frames)
        images, shown = kernels.model_input(frames)
        timer.mark("preprocess")
        masks, probs = kernels.saliency(images, targets)
        chosen = [target if target != AUTO else int(probs[index].argmax()) for index, target in enumerate(targets)]
        shut = closed(probs, targets, chosen, gate)
        if shut.any():
            masks = kernels.emptied(masks, shut)
        if mask_filter is not None:
            masks = kernels.from_host(mask_filter(kernels.to_host(masks), chosen))
        timer.mark("model")
        fills = kernels.fills(images, fill)
        views = kernels.views(shown, masks, fills, opacity)
        model_images = kernels.model_images(images)
        timer.mark("composite")
        checked: list[dict[str, float] | None] = [None] * len(frames)
        if evidence:
            evidence_probs = kernels.evidence(images, masks, fills)  # (B, 2, K)
            checked = [
                probabilities_of(probs[index, target], evidence_probs[index, :, target])
                for index, target in enumerate(chosen)
            ]
            timer.mark("evidence")
        timings = timer.result(len(frames))
        masks_low = kernels.to_host(masks)
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
        """The evidence check of an explanation made earlier (the live stream's second pass): the black box on its
        preserved and destroyed views at the model's input size, the same numbers `run(..., evidence=True)` gives."""
        kernels = self.kernels
        images = kernels.images_of([explanation.model_image])
        masks = kernels.from_host(explanation.mask_low[None])
        probs = kernels.evidence(images, masks, kernels.fills(images, explanation.fill))[0]  # (2, K)
        return probabilities_of(explanation.target_probability, probs[:, explanation.target])


def explanation_of(
    item: PreparedFrame,
    view: Views,
    target: int,
    probs: np.ndarray,
    classes: tuple[ClassInfo, ...],
    *,
    checked: dict[str, float] | None,
    timings: dict[str, float],
    mask_low: np.ndarray,
    model_image: np.ndarray,
    fill: str,
    opacity: float,
) -> Explanation:
    """One frame's Explanation from its views and the black box's probabilities (K,)."""
    return Explanation(
        frame=item.frame,
        mask=view.mask,
        overlay=view.overlay,
        mask_image=view.mask_image,
        preserved=view.preserved,
        destroyed=view.destroyed,
        target=target,
        target_name=classes[target].display_name,
        target_probability=float(probs[target]),
        box=mask_box(view.mask),
        top5=top5(probs, classes),
        probabilities=checked,
        timings_ms=dict(timings),
        mask_low=mask_low,
        model_image=model_image,
        fill=fill,
        opacity=opacity,
    )


def top5(probs: np.ndarray, classes: tuple[ClassInfo, ...]) -> list[tuple[int, str, float]]:
    """(class index, display name, probability) of the five most probable classes, most probable first."""
    count = min(5, probs.shape[0])
    best = np.argpartition(-probs, count - 1)[:count]
    best = best[np.argsort(-probs[best], kind="stable")]
    return [(int(k), classes[int(k)].display_name, float(probs[k])) for k in best]


def probabilities_of(on_frame: float, preserved_destroyed: np.ndarray) -> dict[str, float]:
    """The evidence: the target's probability on the frame, on Phi(X, M) and on Phi(X, 1 - M)."""
    return {
        "frame": float(on_frame),
        "preserved": float(preserved_destroyed[0]),
        "destroyed": float(preserved_destroyed[1]),
    }
