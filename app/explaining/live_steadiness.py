"""Steady over time in the live loop (engine.runtime.temporal, as engine/video/sequence.py does for `engine render`):
while playing, "auto" explains the class SteadyClass holds and the model's masks pass through a MaskSmoother (the
pipeline's `mask_filter`), each when its setting is on. Both start afresh on a seek, another source, model or class; a
frame explained again (a setting changed while paused) keeps the held class and is not averaged with itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app.explaining.mailbox import ExplainParams
from engine.contract import AUTO, Explanation
from engine.runtime.temporal import MaskSmoother, Steadiness, SteadyClass

if TYPE_CHECKING:
    from engine.api import Explainer, PreparedFrame


class LiveSteadiness:
    """The class held and the mask average of the frames the scheduler shows."""

    def __init__(self, params: ExplainParams) -> None:
        self._holder: SteadyClass | None = None  # "auto"'s class over playback frames (params.steady_class)
        self._smoother: MaskSmoother | None = None  # the mask over playback frames (params.smooth_mask)
        self.configure(params)

    def explain(
        self, explainer: Explainer, prepared: PreparedFrame, params: ExplainParams, follows: bool
    ) -> Explanation:
        """The frame explained for the class "auto" holds (or the one chosen), its mask through the average.
        `follows`: the frame comes right after the last one (playback), so the class held and the average go on."""
        holder, smoother = self._holder, self._smoother
        if smoother is not None and not follows:
            smoother.reset()  # a frame explained again is not averaged with itself
        held = holder.held if holder is not None else None

        def explain(target: int) -> Explanation:
            return explainer.explain_prepared(
                prepared,
                target,
                fill=params.fill,
                opacity=params.opacity,
                evidence=False,
                mask_filter=None if smoother is None else self._smoothed,
            )

        explanation = explain(params.target if held is None else held)
        if holder is not None and (follows or held is None):
            shown = holder.update(explanation.top5)
            if shown != explanation.target:  # the class changed on this frame (rare by design): explain it again
                explanation = explain(shown)
        return explanation

    def _smoothed(self, masks: np.ndarray, classes: list[int]) -> np.ndarray:
        """The pipeline's mask_filter: the model's low-resolution masks through the average over time."""
        smoother = self._smoother
        assert smoother is not None
        return np.stack([smoother.update(mask, key) for mask, key in zip(masks, classes, strict=True)])

    def configure(self, params: ExplainParams) -> None:
        """The class holder and the mask average for these settings, started afresh (the holder only in "auto")."""
        steadiness = Steadiness(steady_class=params.steady_class)
        self._holder = steadiness.class_holder() if params.target == AUTO else None
        self._smoother = steadiness.mask_smoother() if params.smooth_mask else None

    def reset(self) -> None:
        """The next frame does not follow the last one (a seek, another source, the loop back to the start)."""
        if self._holder is not None:
            self._holder.reset()
        if self._smoother is not None:
            self._smoother.reset()


def steadiness_changed(old: ExplainParams, new: ExplainParams) -> bool:
    """Another class, or the steadiness switched on or off: the class held and the mask average start afresh."""
    return (old.target, old.steady_class, old.smooth_mask) != (new.target, new.steady_class, new.smooth_mask)
