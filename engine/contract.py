"""What the app and the engine both speak: the one contract between them (torch-free: numpy and plain Python).

The app imports this module for types and constants and calls `engine.api` for work; nothing else of engine's
insides. Everything here is cheap to import (no torch, no onnxruntime, no OpenCV).

- `AUTO`: the one encoding of "auto" as a target class: the black box's top-1 on the frame, decided per frame.
  Everywhere a target travels between app and engine it is an `int`: a class index, or `AUTO`.
  (Text such as "auto" or "tabby" is parsed once, at the edges: the CLIs and `Explainer.explain`'s convenience.)
- `FILLS`, `ASPECTS`, `VIEWS`, `RENDER_VIEWS`, `BACKEND_NAMES`, `BACKEND_CHOICES`: the names both sides use.
- `ClassInfo`: one class of a black box. `Explanation`: one explained frame. `Evidence`: its live evidence check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

AUTO: Final = -1
"""Target class "auto": the black box's top prediction on each frame."""

FILLS: Final = ("blur", "grey", "black")
"""What replaces removed pixels (A in Phi(X, M) = X * M + A * (1 - M))."""

ASPECTS: Final = ("pad", "stretch")
"""How a picture that is not square becomes the model's S x S input: padded to a square (aspect kept), or stretched
(engine.runtime.framing)."""

VIEWS: Final = ("overlay", "mask", "preserved", "destroyed")
"""The four pictures of an explanation: frame + heat map, the mask, Phi(X, M), Phi(X, 1 - M)."""

VIEW_ARRAYS: Final = {
    "overlay": "overlay",
    "mask": "mask_image",
    "preserved": "preserved",
    "destroyed": "destroyed",
}
"""View name -> the Explanation attribute that holds its picture."""

RENDER_VIEWS: Final = ("grid", "overlay", "preserved", "destroyed")
"""What an exported video shows: the 2x2 grid of the four views, or one of them."""

BACKEND_NAMES: Final = ("tensorrt", "torch-cuda", "onnxruntime", "openvino", "torch-cpu")
"""The inference backends, in the order `auto` prefers them."""

BACKEND_CHOICES: Final = ("auto", *BACKEND_NAMES)


@dataclass(frozen=True)
class ClassInfo:
    """One class of a black box."""

    index: int
    wnid: str
    names: str  # comma-separated synonyms, the first is the display name

    @property
    def display_name(self) -> str:
        return self.names.split(",")[0].strip()


@dataclass
class Explanation:
    """One explained frame: numpy arrays and plain Python only (what crosses from engine to app).

    The views and the mask are at the size they were made for: the frame's own, or (live) the size they are shown
    at, never larger than the frame (`engine.api.full_resolution` makes them again at the frame's size). `box` is
    in the views' pixels.
    """

    frame: np.ndarray  # (H, W, 3) uint8 RGB, the input frame at its own size
    mask: np.ndarray  # (h, w) float32 in [0, 1], at the views' size
    overlay: np.ndarray  # (h, w, 3) uint8: the heat map over the frame
    mask_image: np.ndarray  # (h, w, 3) uint8: the mask as a heat map
    preserved: np.ndarray  # (h, w, 3) uint8: Phi(X, M)
    destroyed: np.ndarray  # (h, w, 3) uint8: Phi(X, 1 - M)
    target: int  # the class explained (never AUTO: "auto" is resolved to the frame's top-1)
    target_name: str
    target_probability: float  # the black box's probability of the target on the frame
    box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) around mask >= 0.5 in the views' pixels, x1/y1 exclusive
    top5: list[tuple[int, str, float]]  # (class index, display name, probability) on the frame
    probabilities: dict[str, float] | None  # the target's probability on "frame", "preserved", "destroyed"
    timings_ms: dict[str, float]  # "preprocess", "model", "composite", "evidence", "total" (per frame)
    mask_low: np.ndarray  # (S/4, S/4) float32: the model's own mask, before any resizing
    model_image: np.ndarray  # (S, S, 3) uint8: the frame as the model saw it (evidence is computed from it)
    fill: str = "blur"  # what replaced removed pixels in preserved / destroyed (FILLS)
    opacity: float = 0.5  # of the heat map in the overlay
    # the model saw `frame` padded to a square (engine.runtime.framing); mask_low, model_image: square
    padded: bool = False

    @property
    def view_size(self) -> tuple[int, int]:
        """(width, height) of the views."""
        return self.mask.shape[1], self.mask.shape[0]


@dataclass(frozen=True)
class Evidence:
    """The live evidence check of one explained frame, computed after it (~12 Hz): the target's probability on
    the frame, on Phi(X, M) (a good mask keeps it) and on Phi(X, 1 - M) (a good mask removes it)."""

    frame_index: int | None  # which frame it belongs to (None: a live camera frame)
    target: int
    probabilities: dict[str, float]  # "frame", "preserved", "destroyed"
    frame_time: float  # time.perf_counter() when the frame was captured
    done_at: float  # time.perf_counter() when the evidence was ready
    check_ms: float = 0.0  # how long the check took (its two black-box passes)
    tag: object = None  # the caller's own identification of the frame (e.g. (source generation, frame index))
