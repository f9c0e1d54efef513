"""A video's frames explained in order, steadily: the held class in "auto", the smoothed mask (engine.runtime.temporal).

`SequenceExplainer` wraps an engine.api.Explainer for one run through consecutive frames (a render, a
measurement). Batches of frames are explained with the class `SteadyClass` holds as their target; when it changes
on a frame of a batch, the rest of the batch is explained again for the new class (class changes are rare by
design, so this costs little). With a `MaskSmoother`, the model's low-resolution masks pass through the average
before anything is composed from them and before the evidence is computed on them, so the views, the box, the mask
statistics and the preserved / destroyed probabilities all describe the mask that is shown.

The smoother is the pipeline's `mask_filter`: the step between the model and everything made from its masks.
"""

from __future__ import annotations

import numpy as np

from engine.api import Explainer
from engine.contract import AUTO, Explanation
from engine.runtime.temporal import MaskSmoother, Steadiness, SteadyClass


class SequenceExplainer:
    """Explains consecutive frames of one video with `target` (a class index or AUTO) and `steadiness`."""

    def __init__(
        self,
        explainer: Explainer,
        target: int,
        steadiness: Steadiness = Steadiness(),
        evidence: bool = True,
        aspect: str = "stretch",
    ) -> None:
        self.explainer = explainer
        # engine.runtime.framing: a frame that is not square is stretched or padded to the model's input
        self.aspect = aspect
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
            batch = self.explainer.explain_batch(
                frames[start:end],
                [target] * (end - start),
                evidence=self.evidence,
                mask_filter=None if self.smoother is None else self._smoothed,
                aspect=self.aspect,
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

    def _smoothed(self, masks: np.ndarray, classes: list[int]) -> np.ndarray:
        """The masks of a batch through the smoother, in order (each with the class it explains)."""
        assert self.smoother is not None
        return np.stack([self.smoother.update(mask, key) for mask, key in zip(masks, classes)])
