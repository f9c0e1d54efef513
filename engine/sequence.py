"""A video's frames explained in order, steadily: the held class in "auto" and the smoothed mask (engine.temporal).

`SequenceExplainer` wraps an engine.api.Explainer for one run through consecutive frames (a render, a
measurement). Batches of frames are explained with the class `SteadyClass` holds as their target; when it changes
on a frame of a batch, the rest of the batch is explained again for the new class (class changes are rare by
design, so this costs little). With a `MaskSmoother`, the model's low-resolution masks pass through the average
before anything is composed from them and before the evidence is computed on them, so the views, the box, the mask
statistics and the preserved / destroyed probabilities all describe the mask that is shown.

The pipeline has no hook between its model and its compositing yet; until it has one, the smoother is put there
by standing in for the explainer's backend for the duration of each call (`_SmoothedMasks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from engine.api import Explainer
from engine.backends.base import Backend
from engine.contract import AUTO, Explanation
from engine.temporal import MaskSmoother, Steadiness, SteadyClass


class SequenceExplainer:
    """Explains consecutive frames of one video with `target` (a class index or AUTO) and `steadiness`."""

    def __init__(
        self, explainer: Explainer, target: int, steadiness: Steadiness = Steadiness(), evidence: bool = True
    ) -> None:
        self.explainer = explainer
        self.target = target
        self.evidence = evidence
        self.holder: SteadyClass | None = steadiness.class_holder() if target == AUTO else None
        self.smoother: MaskSmoother | None = steadiness.mask_smoother()
        self.frames_explained_again = 0  # frames explained a second time after a class change in their batch

    def reset(self) -> None:
        """The next frame does not follow the last one (a seek, another video)."""
        if self.holder is not None:
            self.holder.reset()
        if self.smoother is not None:
            self.smoother.reset()

    def explain(self, frames: list[np.ndarray]) -> list[Explanation]:
        """The next frames of the video, same-sized RGB uint8, in order -> one Explanation each."""
        explained: list[Explanation] = []
        counted = False  # the first frame's ranking was counted already (it is being explained again)
        while len(explained) < len(frames):
            start = len(explained)
            # before the first frame nothing is held: that frame alone decides, the rest of the batch follows it
            end = start + 1 if self.holder is not None and self.holder.held is None else len(frames)
            target = self._current_target()
            with self._smoothing():
                batch = self.explainer.explain_batch(
                    frames[start:end], [target] * (end - start), evidence=self.evidence
                )
            for position, explanation in enumerate(batch):
                if self.holder is not None and not counted:
                    if self.holder.update(explanation.top5) != explanation.target:
                        counted = True  # the class changed on this frame: explain it and the rest again
                        self.frames_explained_again += len(batch) - position
                        break
                counted = False
                explained.append(explanation)
        return explained

    def _current_target(self) -> int:
        if self.holder is None or self.holder.held is None:
            return self.target
        return self.holder.held

    @contextmanager
    def _smoothing(self) -> Iterator[None]:
        if self.smoother is None:
            yield
            return
        pipeline = self.explainer.pipeline
        backend = pipeline.backend
        pipeline.backend = _SmoothedMasks(backend, self.smoother)  # type: ignore[assignment]
        try:
            yield
        finally:
            pipeline.backend = backend


class _SmoothedMasks:
    """The explainer's backend, with the saliency graph's masks passed through a MaskSmoother in batch order.

    Each mask's class is its target, or the black box's top-1 for an AUTO target (as the pipeline resolves it)."""

    def __init__(self, backend: Backend, smoother: MaskSmoother) -> None:
        self._backend = backend
        self._smoother = smoother

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        outputs = self._backend.infer(graph, feed)
        if graph != "saliency":
            return outputs
        masks = outputs["mask_low"]  # (B, 1, h, w) on the backend's device
        targets = feed["target"].cpu().numpy()
        top1 = outputs["logits"].argmax(dim=1).cpu().numpy()
        classes = np.where(targets == AUTO, top1, targets)
        smoothed = np.stack(
            [self._smoother.update(mask, int(key)) for mask, key in zip(masks[:, 0].float().cpu().numpy(), classes)]
        )
        return {**outputs, "mask_low": torch.from_numpy(smoothed[:, None]).to(masks.device, masks.dtype)}
