"""Steady explanations over time: a class that holds in "auto", a mask that does not flicker (plain numpy).

Both the app's live loop and `engine render` use these two small state machines, one update per shown frame, in
the order of the frames; `reset()` on a seek or a new source (the past no longer precedes the frame).

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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

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

    def class_holder(self) -> SteadyClass | None:
        return SteadyClass(self.margin, self.hold) if self.steady_class else None

    def mask_smoother(self) -> MaskSmoother | None:
        return MaskSmoother(self.smooth) if self.smooth < 1.0 else None
