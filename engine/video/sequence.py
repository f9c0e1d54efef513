"""A video's frames explained in order, steadily: engine.runtime.temporal's SteadyRun over batches of frames.

`SequenceExplainer` wraps an engine.api.Explainer for one run through consecutive frames (a render, the app's export,
the app's evidence timeline, a measurement). It is the SteadyRun the live loop uses (the held class in "auto", the
mask averaged over time, a batch explained again after a class change), fed batches of frames instead of one frame
at a time: a frame played in order from the same start gets the same class, mask and numbers either way. With a
smoother, the model's low-resolution masks pass through the average before anything is composed from them and before
the evidence is computed on them, so the views, the box, the mask statistics and the preserved / destroyed
probabilities all describe the mask that is shown.
"""

from __future__ import annotations

import numpy as np

from engine.api import Explainer
from engine.contract import Explanation
from engine.runtime.framing import Region
from engine.runtime.temporal import MaskAverage, Steadiness, SteadyRun


class SequenceExplainer:
    """Explains consecutive frames of one video with `target` (a class index or AUTO) and `steadiness`; `aspect` and
    `region` frame each picture as engine.runtime.framing does (the app's live view takes the same)."""

    def __init__(
        self,
        explainer: Explainer,
        target: int,
        steadiness: Steadiness = Steadiness(),
        evidence: bool = True,
        aspect: str = "stretch",
        region: Region | None = None,
    ) -> None:
        self.explainer = explainer
        self.aspect = aspect
        self.region = region
        self.target = target
        self.evidence = evidence
        self.run = SteadyRun(target, steadiness)

    @property
    def frames_explained_again(self) -> int:
        """Frames explained a second time after a class change in their batch."""
        return self.run.frames_explained_again

    def reset(self) -> None:
        """The next frame does not follow the last one (a seek, another video)."""
        self.run.reset()

    def explain(self, frames: list[np.ndarray]) -> list[Explanation]:
        """The next frames of the video, same-sized RGB uint8, in order -> one Explanation each."""

        def explain(start: int, end: int, target: int, mask_filter: MaskAverage | None) -> list[Explanation]:
            return self.explainer.explain_batch(
                frames[start:end],
                [target] * (end - start),
                evidence=self.evidence,
                mask_filter=mask_filter,
                aspect=self.aspect,
                region=self.region,
            )

        return self.run.explain(len(frames), explain)
