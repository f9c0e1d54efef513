"""The black box's gate on the masking model's masks: a class the black box does not see has no evidence to show.

The masking model is trained to answer an empty mask for a class that is absent (the paper's fake labels), but for
classes the black box ranks among its likely ones and still gives < 1% it often draws blobs (on vtest.avi frames,
55% of such cases had a pixel above 0.5). The saliency graph computes the black box's probabilities anyway, so the
engine empties the mask of a class asked for by name (never of AUTO, the frame's top-1) when the black box gives it less
than `GATE` on the frame. `python -m trainer gate` measured the threshold: at 0.002, 99.7% of weak-class cases on
dev images and 98.4% / 98.5% on frames of vtest.avi / box.mp4 have mean mask <= 0.02 and no pixel above 0.5, at a
cost of 0.2 points of localisation error (paper protocol) on the 630 dev images (assets/README.md, "Faithfulness").
"""

from __future__ import annotations

import numpy as np

from engine.contract import AUTO

GATE = 0.002  # the default threshold: masks of asked-for classes below this probability are emptied


def check_gate(value: float) -> float:
    """A threshold in [0, 1) (0: no gate), else ValueError."""
    gate = float(value)
    if not 0.0 <= gate < 1.0:
        raise ValueError(f"gate must be in [0, 1) (0: none), got {value!r}")
    return gate


def closed(probabilities: np.ndarray, requested: list[int], chosen: list[int], gate: float) -> np.ndarray:
    """(B,) bool: the frames whose mask the gate empties. probabilities (B, K) on the frames; requested: the targets
    as asked (AUTO or an index), chosen: the classes explained."""
    return np.array(
        [
            target != AUTO and float(probabilities[index, label]) < gate
            for index, (target, label) in enumerate(zip(requested, chosen))
        ],
        dtype=bool,
    )
