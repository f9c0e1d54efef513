"""Steady over time in the live loop: engine.runtime.temporal's SteadyRun (the one definition the export and the
timeline use too), fed the frames the scheduler shows, one at a time. While playing, "auto" explains the class it
holds and the model's masks pass through the average over time, each when its setting is on. Both start afresh on a
seek, another source, model or class; a frame explained again (a setting changed while paused) keeps the held class
and is not averaged with itself.

Beside each explanation, `Played` (app/explaining/results.py) says how its run went: from which frame, and how many
frames playback passed over. A frame played in order from the file's first frame, none passed over, is explained
exactly as the export and the timeline explain it; any other is explained otherwise (alone after a jump, averaged
over fewer frames), and `Played.note` says how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.explaining.mailbox import ExplainParams
from app.explaining.results import Played
from engine.contract import Explanation
from engine.runtime.temporal import MaskAverage, Steadiness, SteadyRun

if TYPE_CHECKING:
    from engine.api import Explainer, PreparedFrame


class LiveSteadiness:
    """The class held and the mask average of the frames the scheduler shows, and how each run went."""

    def __init__(self, params: ExplainParams) -> None:
        self._run = SteadyRun(params.target, Steadiness.from_switches(params.steady_class, params.smooth_mask))
        self._since: int | None = None  # the first frame of the current run (None: no run yet)
        self._last: int | None = None  # the last frame explained
        self._passed_over = 0
        self.configure(params)

    def explain(
        self,
        explainer: Explainer,
        prepared: PreparedFrame,
        params: ExplainParams,
        follows: bool,
        index: int | None = None,
    ) -> tuple[Explanation, Played]:
        """Frame `index` explained for the class "auto" holds (or the one chosen), its mask through the average, and
        how its run went. `follows`: the frame comes after the last one in playback, so the class held and the
        average go on (frames passed over since are counted); otherwise the frame is explained again."""

        def explain(start: int, end: int, target: int, mask_filter: MaskAverage | None) -> list[Explanation]:
            explanation = explainer.explain_prepared(
                prepared, target, fill=params.fill, opacity=params.opacity, evidence=False, mask_filter=mask_filter
            )
            return [explanation]

        explanation = self._run.explain(1, explain, again=not follows)[0]
        return explanation, self._played(index, follows)

    def _played(self, index: int | None, follows: bool) -> Played:
        last = self._last
        if index is None or last is None or not follows or index <= last:
            self._since, self._passed_over = index, 0  # a new run (the average starts afresh on this frame)
        else:
            self._passed_over += index - last - 1
        self._last = index
        return Played(self._since, self._passed_over, self._run.steady)

    def configure(self, params: ExplainParams) -> None:
        """The class holder and the mask average for these settings, started afresh (the holder only in "auto")."""
        self._run = SteadyRun(params.target, Steadiness.from_switches(params.steady_class, params.smooth_mask))
        self._last = None

    def reset(self) -> None:
        """The next frame does not follow the last one (a seek, another source, the loop back to the start)."""
        self._run.reset()
        self._last = None


def steadiness_changed(old: ExplainParams, new: ExplainParams) -> bool:
    """Another class, or the steadiness switched on or off: the class held and the mask average start afresh."""
    return (old.target, old.steady_class, old.smooth_mask) != (new.target, new.steady_class, new.smooth_mask)
