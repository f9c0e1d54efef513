"""Steady explanations over time: a class that holds in "auto", a mask that does not flicker (plain numpy).

`SteadyRun` is the one definition of "the steady explanation of a frame": the app's live loop
(app/explaining/live_steadiness.py), `engine render` and the app's export (engine/video/sequence.py) and the app's
evidence timeline all explain frames through it, so a frame played in order from the same start gets the same class,
mask and numbers in each. It drives two small state machines, one update per frame, in the order of the frames;
`reset()` on a seek or a new source (the past no longer precedes the frame).

- `SteadyClass`: hysteresis for "auto". The black box's top-1 can change from one frame to the next when two
  classes are close (four classes within a second on a phone clip). The class shown changes only when other
  classes lead it clearly (by `margin` in probability, or it left the top 5) on `hold` frames in a row; it then goes
  to the class that led most over those frames. `SteadyClass(margin=0, hold=1)` is plain auto.
- `MaskSmoother`: an exponential moving average of the mask, M'(t) = alpha M(t) + (1 - alpha) M'(t - 1), that
  starts afresh when the class explained changes (a mask of another class is no evidence for this one) or the
  mask's size changes. alpha = 1 is off. Meant for the model's low-resolution mask, before anything is composed
  from it (bilinear upsampling commutes with the average: the upsampled average is the average of the upsampled
  masks); its delay is (1 - alpha) / alpha frames on average (`mean_delay`).

The defaults below were chosen from measurements (`python -m engine steadiness`); each says what was measured.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from engine.contract import AUTO, Explanation

STEADY_MARGIN: Final = 0.1
"""How far (in the black box's probability) other classes must lead the class shown for it to change."""

STEADY_HOLD: Final = 3
"""On how many frames in a row they must lead it.

Measured (`python -m engine steadiness`, bundled model, 300 frames of box.mp4, cup.mp4 (all 217), vtest.avi and
box.mp4 at 1280x720): with margin 0.1 and hold 3 "auto" changes class 1.7, 4.2, 1.3 and 1.7 times per 100 frames
instead of 16.7, 23.1, 28.1 and 15.7, each change coming 6.4, 4.7, 9.8 and 7.0 frames after the class it leaves last
was the top-1 (mean). Hold 2 is about as steady (1.7, 4.6, 2.0, 1.7); margin 0.05 changes class 1.5-1.8 times as
often, margin 0 (persistence alone) 2.1-5.4 times."""

SMOOTH_ALPHA: Final = 0.5
"""The mask average's weight of the newest mask (1: no smoothing).

Measured as above, with the hysteresis: 0.5 lowers mean |M(t) - M(t-1)| by 29-43% (box.mp4 0.0120 -> 0.0072,
vtest.avi 0.0237 -> 0.0135) for a mean delay of one frame, and leaves the evidence about as it was (`engine render`,
200 frames of each clip: the mean probability on the preserved view equal or higher on all four, on the destroyed
view higher by at most 0.0011, cup.mp4's 0.0072 -> 0.0083). 0.3 is steadier still (-40-59%) for 2.3 frames."""

Ranking = Sequence[tuple[int, str, float]]
"""The black box's best classes on a frame, best first: (class index, name, probability), as Explanation.top5."""


class SteadyClass:
    """The class to explain in "auto", held until others lead it clearly for a few frames."""

    def __init__(self, margin: float = STEADY_MARGIN, hold: int = STEADY_HOLD) -> None:
        if not 0.0 <= margin <= 1.0:
            raise ValueError(f"margin must lie in [0, 1], not {margin}")
        if hold < 1:
            raise ValueError(f"hold must be at least 1 frame, not {hold}")
        self.margin = float(margin)
        self.hold = int(hold)
        self.held: int | None = None  # the class shown; None before the first frame
        self._frames_led = 0  # frames in a row on which other classes led the held one clearly
        self._votes: dict[int, float] = {}  # their leaders: summed probability over those frames

    def reset(self) -> None:
        """Forget the class held (a seek, a new source): the next frame's top-1 is taken at once."""
        self.held = None
        self._frames_led = 0
        self._votes.clear()

    def update(self, ranking: Ranking) -> int:
        """The class to show on the frame the black box ranks as `ranking` (best first, non-empty)."""
        leader, _, leader_probability = ranking[0]
        if self.held is None:
            self.held = leader
            return leader
        held_probability = next((p for index, _, p in ranking if index == self.held), None)
        led_clearly = leader != self.held and (
            held_probability is None or leader_probability - held_probability >= self.margin
        )
        if not led_clearly:
            self._frames_led = 0
            self._votes.clear()
            return self.held
        self._frames_led += 1
        self._votes[leader] = self._votes.get(leader, 0.0) + leader_probability
        if self._frames_led >= self.hold:
            self.held = max(self._votes, key=self._votes.__getitem__)
            self._frames_led = 0
            self._votes.clear()
        return self.held


class MaskSmoother:
    """Exponential moving average of masks of one class, in the order of the frames."""

    def __init__(self, alpha: float = SMOOTH_ALPHA) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], not {alpha}")
        self.alpha = float(alpha)
        self._last: np.ndarray | None = None  # the last mask shown; None: start afresh
        self._key: Hashable = None  # the class it explains

    def reset(self) -> None:
        """Start afresh (a seek, a new source): the next mask is shown as it is."""
        self._last = None

    def update(self, mask: np.ndarray, key: Hashable = None) -> np.ndarray:
        """The mask to show (float32, `mask`'s shape) for `mask` of class `key` on the next frame."""
        mask = np.asarray(mask, dtype=np.float32)
        last = self._last
        if self.alpha == 1.0 or last is None or self._key != key or last.shape != mask.shape:
            smoothed = mask.copy()
        else:
            smoothed = last + np.float32(self.alpha) * (mask - last)
        self._last, self._key = smoothed, key
        return smoothed

    @property
    def mean_delay(self) -> float:
        """How many frames the average lags behind the masks, on average: (1 - alpha) / alpha."""
        return (1.0 - self.alpha) / self.alpha


@dataclass(frozen=True)
class Steadiness:
    """The settings of both, as `engine render` and the app take them."""

    steady_class: bool = True  # hold the class in "auto" (SteadyClass); no effect on a chosen class
    margin: float = STEADY_MARGIN
    hold: int = STEADY_HOLD
    smooth: float = SMOOTH_ALPHA  # the mask average's alpha; 1: off

    def __post_init__(self) -> None:  # the same checks (ValueError) as the objects they make
        SteadyClass(self.margin, self.hold)
        MaskSmoother(self.smooth)

    @classmethod
    def from_switches(cls, steady_class: bool, smooth_mask: bool) -> Steadiness:
        """The app's two View switches (Steady auto class, Smooth mask over time) with the measured defaults."""
        return cls(steady_class=steady_class, smooth=SMOOTH_ALPHA if smooth_mask else 1.0)

    def class_holder(self) -> SteadyClass | None:
        return SteadyClass(self.margin, self.hold) if self.steady_class else None

    def mask_smoother(self) -> MaskSmoother | None:
        return MaskSmoother(self.smooth) if self.smooth < 1.0 else None


MaskAverage = Callable[[np.ndarray, list[int]], np.ndarray]
"""(B, h, w) low-resolution masks and their classes -> the masks to show (engine.runtime.stages.MaskFilter)."""

ExplainFrames = Callable[[int, int, int, MaskAverage | None], list[Explanation]]
"""explain(start, end, target, mask_filter): frames [start, end) of the caller's frames explained for `target` (a
class index or AUTO), their masks through `mask_filter`, in order."""


class SteadyRun:
    """The steady explanation of each frame of a run of frames explained in order (see the module's docstring).

    Each frame is explained for the class `SteadyClass` holds in "auto" (the chosen class otherwise), its mask
    through the `MaskSmoother` before anything is made from it (views, box, evidence). When the class held changes on
    a frame, that frame and the rest of its batch are explained again for the new class (rare by design, so it costs
    little); the first frame of a run is explained alone, since it decides the class for the rest of its batch. One
    frame at a time (the live loop) or in batches (a render) gives the same explanations.
    """

    def __init__(self, target: int, steadiness: Steadiness = Steadiness()) -> None:
        self.target = target  # a class index or AUTO
        self.steadiness = steadiness
        self.holder: SteadyClass | None = steadiness.class_holder() if target == AUTO else None
        self.smoother: MaskSmoother | None = steadiness.mask_smoother()
        self.frames_explained_again = 0  # frames explained a second time after a class change in their batch

    @property
    def steady(self) -> bool:
        """Whether a frame's explanation depends on the frames before it (a class held, or a mask average)."""
        return self.holder is not None or self.smoother is not None

    def reset(self) -> None:
        """The next frame does not follow the last one (a seek, a loop, another video): a new run starts there."""
        if self.holder is not None:
            self.holder.reset()
        if self.smoother is not None:
            self.smoother.reset()

    def explain(self, count: int, explain: ExplainFrames, *, again: bool = False) -> list[Explanation]:
        """The next `count` frames of the run, in order, explained by `explain` -> one Explanation each.

        `again`: the frame explained last is explained once more (a setting changed while paused): the class held
        is kept and not counted again, and its mask is not averaged with itself (the average starts afresh)."""
        holder, smoother = self.holder, self.smoother
        if again and smoother is not None:
            smoother.reset()
        counting = holder is not None and (not again or holder.held is None)
        explained: list[Explanation] = []
        recounted = False  # the first frame's ranking was counted already (it is being explained again)
        while len(explained) < count:
            start = len(explained)
            # before the first frame nothing is held: that frame alone decides, the rest of the batch follows it
            end = start + 1 if holder is not None and holder.held is None else count
            target = self.target if holder is None or holder.held is None else holder.held
            batch = explain(start, end, target, None if smoother is None else self._smoothed)
            for position, explanation in enumerate(batch):
                if holder is not None and counting and not recounted:
                    if holder.update(explanation.top5) != explanation.target:
                        recounted = True  # the class changed on this frame: explain it and the rest again
                        self.frames_explained_again += len(batch) - position
                        break
                recounted = False
                explained.append(explanation)
        return explained

    def _smoothed(self, masks: np.ndarray, classes: list[int]) -> np.ndarray:
        """The masks of a batch through the average, in order (each with the class it explains)."""
        smoother = self.smoother
        assert smoother is not None
        return np.stack([smoother.update(mask, key) for mask, key in zip(masks, classes, strict=True)])
