"""The frame pipeline on the CPU, in numpy and OpenCV around a runner (engine/runtime/runners.py): no torch.

    frame --prepare--> model image (S x S) [+ the frame at the size it is shown]
          --runner "saliency"--> mask (S/4) + logits
          --composite--> mask, heat map, overlay, preserved, destroyed at the views' size
          --evidence (optional, now or later)--> the black box on Phi(X, M) and Phi(X, 1 - M): the target's probability

`prepare` is separate so that a decoding thread can do it ahead of the model (the live pipeline overlaps it with the
previous frame's model); `evidence` is separate so that the live check can run later, in its own thread, on the
explanation alone (it holds the model's input and mask).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.classes import resolve_class
from engine.contract import AUTO, ClassInfo, Explanation
from engine.errors import UnknownClassError
from engine.runtime.composite_host import (
    HostCompositor,
    Views,
    check_fill,
    check_opacity,
    fit_size,
    mask_box,
    resize_to,
    softmax,
)
from engine.runtime.gate import closed
from engine.runtime.runners import Runner


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
    """A class index, AUTO, "auto", or a class name / wnid -> a class index or AUTO."""
    if isinstance(target, str) and target.strip().lower() == "auto":
        return AUTO
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if int(target) == AUTO:
            return AUTO
        if not 0 <= int(target) < len(classes):
            raise UnknownClassError(f"class index {int(target)} is outside 0..{len(classes) - 1} of this black box")
        return int(target)
    if isinstance(target, str):
        return resolve_class(target, classes)
    raise UnknownClassError(f"a target is a class index, a class name or 'auto', not {target!r}")


@dataclass(frozen=True)
class PreparedFrame:
    """A frame made ready for the model (and for display) before its turn: what `prepare` costs, done ahead."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB, as read
    model_image: np.ndarray  # (S, S, 3) uint8
    shown: np.ndarray  # the frame at the views' size (the frame itself when shown at full size)
    prepare_ms: float
    shown_size: tuple[int, int] = (0, 0)  # (width, height) of the views
    # where the picture lies in `frame` when padded (engine.runtime.framing)
    content: tuple[int, int, int, int] | None = None


MaskFilter = Callable[[np.ndarray, list[int]], np.ndarray]
"""(B, h, w) float32 low-resolution masks and their classes -> masks: a step between the model and everything made
from its masks (views, box, evidence), e.g. engine.runtime.temporal's average over time."""


class StageTimer:
    """Milliseconds per stage of one batch, per frame."""

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


class HostPipeline:
    """Explains frames with a CPU runner; the runner is owned by the caller."""

    def __init__(self, runner: Runner, input_size: int, classes: tuple[ClassInfo, ...]) -> None:
        self.runner = runner
        self.input_size = input_size
        self.classes = classes
        self.ops = HostCompositor(input_size)

    def warm_up(self, evidence: bool = True) -> None:
        """One pass through each graph (the runtimes allocate and pick kernels on their first call)."""
        frame = np.zeros((480, 640, 3), dtype=np.uint8)
        self.run([self.prepare(frame)], [AUTO], evidence=evidence)

    def prepare(self, frame: np.ndarray, view_size: tuple[int, int] | None = None) -> PreparedFrame:
        """The model's S x S image and the frame at the views' size (`view_size`: at most this; None: full size)."""
        start = time.perf_counter()
        shown_size = fit_size((frame.shape[1], frame.shape[0]), view_size)
        shown = resize_to(frame, shown_size)
        # from the frame itself, never from the smaller picture: the model sees exactly what it sees offline, so a
        # live mask is the offline mask, only shown smaller (resizing twice moved an untrained mask by 0.04)
        model_image = self.ops.model_image(frame)
        return PreparedFrame(frame, model_image, shown, (time.perf_counter() - start) * 1000, shown_size)

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
        timer = StageTimer({"preprocess": sum(item.prepare_ms for item in frames)})
        images = self.ops.model_input([item.model_image for item in frames])
        outputs = self.runner.run("saliency", {"image": images, "target": np.asarray(targets, dtype=np.int64)})
        masks_low = outputs["mask_low"][:, 0]  # (B, h, w)
        probs = softmax(outputs["logits"])  # (B, K)
        chosen = [target if target != AUTO else int(probs[index].argmax()) for index, target in enumerate(targets)]
        masks_low = np.where(closed(probs, targets, chosen, gate)[:, None, None], np.float32(0), masks_low)
        if mask_filter is not None:
            masks_low = np.ascontiguousarray(mask_filter(masks_low, chosen), dtype=np.float32)
        timer.mark("model")
        fills = [self.ops.fill_low(item.model_image, fill) for item in frames]
        views = [self.ops.views(item.shown, mask, low, opacity) for item, mask, low in zip(frames, masks_low, fills)]
        timer.mark("composite")
        checked: list[dict[str, float] | None] = [None] * len(frames)
        if evidence:
            inputs = np.concatenate([self.ops.evidence_input(*args) for args in zip(images, masks_low, fills)])
            evidence_probs = softmax(self.runner.run("classifier", {"image": inputs})["logits"]).reshape(
                len(frames), 2, -1
            )  # preserved, destroyed per frame
            checked = [
                probabilities_of(probs[index, target], evidence_probs[index, :, target])
                for index, target in enumerate(chosen)
            ]
            timer.mark("evidence")
        timings = timer.result(len(frames))
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
                model_image=item.model_image,
                fill=fill,
                opacity=opacity,
            )
            for index, (item, view, target) in enumerate(zip(frames, views, chosen))
        ]

    def evidence(self, explanation: Explanation) -> dict[str, float]:
        """The evidence check of an explanation made earlier: the black box on its preserved and destroyed views at
        the model's input size (the same numbers `run(..., evidence=True)` gives)."""
        image = self.ops.model_input([explanation.model_image])[0]
        fill_low = self.ops.fill_low(explanation.model_image, explanation.fill)
        inputs = self.ops.evidence_input(image, explanation.mask_low, fill_low)
        probs = softmax(self.runner.run("classifier", {"image": inputs})["logits"])
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
    """One frame's Explanation from its views and the black box's probabilities (K,) (both pipelines make them so)."""
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
