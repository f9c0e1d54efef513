"""Compositing on the CPU: numpy and OpenCV on uint8 frames, no torch (the CPU runtime never loads it).

What an explanation's pictures are (engine/runtime/composite_device.py computes the same with torch on a GPU; tests
check that they agree):
- the model input: the frame resized to S x S (antialiased when shrinking), float32 in [0, 1], (B, 3, S, S);
- the fill A of Phi(X, M) = X * M + A * (1 - M): "blur" = X under a Gaussian blur of sigma 10 px at S = 224
  (computed at S/4 with sigma 2.5 and upsampled: the same for a blur that strong, at a fraction of the cost),
  "grey" = 0.5, "black" = 0;
- the mask at the views' size (bilinear from the model's S/4 mask), the heat map (JET), the overlay
  (1 - opacity) * frame + opacity * heat, preserved = Phi(X, M), destroyed = Phi(X, 1 - M);
- the evidence inputs: preserved and destroyed at S x S, for the black box.

The views are made at the size they are shown (`fit_size`): a 1280x720 frame shown in 470x264 pixels is blended at
470x264, not at full size and then scaled down by the painter. `full_resolution` makes them again at the frame's
own size from what an Explanation keeps (the frame, the low-resolution mask, the model's input), for snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from engine.contract import FILLS, Explanation

BLUR_SIGMA_AT_224 = 10.0
GREY = 0.5


@dataclass
class Views:
    """The uint8 (H, W, 3) RGB views of one frame plus its float32 (H, W) mask, all at one size."""

    mask: np.ndarray
    overlay: np.ndarray
    mask_image: np.ndarray
    preserved: np.ndarray
    destroyed: np.ndarray


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
    return fill


def check_opacity(opacity: float) -> float:
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], not {opacity}")
    return float(opacity)


@lru_cache(maxsize=1)
def heat_lut() -> np.ndarray:
    """(256, 3) uint8 RGB: OpenCV's JET colormap, blue (0) to red (1)."""
    grey = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(grey, cv2.COLORMAP_JET).reshape(256, 3)
    return np.ascontiguousarray(bgr[:, ::-1])


def blur_size(input_size: int) -> tuple[int, float]:
    """(side, sigma) of the low-resolution blur: S/4 pixels, sigma 2.5 at S = 224 (10 px at full size)."""
    side = max(input_size // 4, 1)
    return side, BLUR_SIGMA_AT_224 * side / 224


def mask_box(mask: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """Tightest (x0, y0, x1, y1) around mask >= threshold, x1 / y1 exclusive; None for an empty mask."""
    above = mask >= threshold
    rows = np.flatnonzero(above.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(above.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def fit_size(frame_size: tuple[int, int], view_size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the views for a (width, height) frame shown in at most `view_size`: the frame's aspect
    ratio, as large as fits, never larger than the frame itself (None: the frame's size)."""
    width, height = frame_size
    if view_size is None:
        return width, height
    scale = min(view_size[0] / width, view_size[1] / height, 1.0)
    if scale >= 1.0:
        return width, height
    return max(round(width * scale), 1), max(round(height * scale), 1)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the probabilities the app shows; exact enough for 3 digits in any case)."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` at (width, height): pixel-area averaging when shrinking both sides (antialiased), else bilinear.
    The same rule as TorchCompositor's, so both paths feed the model the same input."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrinking = image.shape[1] >= size[0] and image.shape[0] >= size[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class HostCompositor:
    """uint8 OpenCV compositing for a model of input size S. Frames: (H, W, 3) uint8 RGB numpy arrays."""

    # Everything here is numpy / OpenCV, never torch ops: on a busy CPU, torch's intra-op thread pool turns a
    # 0.1 ms conversion into tens of milliseconds (measured), and OpenCV's uint8 kernels are fast anyway.

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size
        self.blur_side, self.blur_sigma = blur_size(input_size)
        # the kernel cv2.GaussianBlur takes for uint8 images (radius 3 sigma), also for the float fill below; the
        # torch compositor uses the same
        self.blur_taps = 2 * max(int(3 * self.blur_sigma + 0.5), 1) + 1
        self.lut = heat_lut().reshape(256, 1, 3)

    def model_image(self, frame: np.ndarray) -> np.ndarray:
        """The frame at the model's S x S, uint8 (H, W, 3)."""
        return resize_to(frame, (self.input_size, self.input_size))

    @staticmethod
    def model_input(images: list[np.ndarray]) -> np.ndarray:
        """(B, 3, S, S) float32 in [0, 1] from the S x S uint8 images."""
        batch = np.stack(images).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.float32) * np.float32(1 / 255)

    def fill_low(self, model_image: np.ndarray, fill: str) -> np.ndarray | float:
        """The fill at S/4 x S/4 (blur, from the S x S image: the same pixels as from the full frame, for less), or
        a constant in 0..255."""
        if fill == "blur":
            # float32, not uint8: the black box's probability on Phi(X, M) moves by up to ~0.03 with one level of
            # rounding in the fill (measured, engine.tools.agreement): the evidence keeps the torch pipeline's precision
            small = cv2.resize(model_image.astype(np.float32), (self.blur_side,) * 2, interpolation=cv2.INTER_AREA)
            return cv2.GaussianBlur(small, (self.blur_taps, self.blur_taps), self.blur_sigma)
        return 255 * GREY if fill == "grey" else 0.0

    def views(self, frame: np.ndarray, mask_low: np.ndarray, fill_low: np.ndarray | float, opacity: float) -> Views:
        """mask_low: (h, w) float32 in [0, 1]; `frame` at the size the views are made at (the frame itself, or the
        frame already resized for display)."""
        height, width = frame.shape[:2]
        mask = cv2.resize(mask_low, (width, height), interpolation=cv2.INTER_LINEAR)
        np.clip(mask, 0.0, 1.0, out=mask)
        mask_u8 = cv2.convertScaleAbs(mask, alpha=255.0)
        heat = cv2.applyColorMap(mask_u8, self.lut)
        overlay = cv2.addWeighted(frame, 1.0 - opacity, heat, opacity, 0.0)
        fill_frame = self._fill_at(_to_u8(fill_low), width, height)  # uint8 like the frame: views are uint8
        inverse = 1.0 - mask
        preserved = cv2.blendLinear(frame, fill_frame, mask, inverse)
        destroyed = cv2.blendLinear(frame, fill_frame, inverse, mask)
        return Views(mask, overlay, heat, preserved, destroyed)

    def evidence_input(self, image: np.ndarray, mask_low: np.ndarray, fill_low: np.ndarray | float) -> np.ndarray:
        """(2, 3, S, S) float32: Phi(X, M) and Phi(X, 1 - M) at the model's input size (image: (3, S, S) in [0, 1])."""
        size = self.input_size
        mask = np.clip(cv2.resize(mask_low, (size, size), interpolation=cv2.INTER_LINEAR), 0, 1)[None]  # (1, S, S)
        fill_image = self._fill_at(fill_low, size, size).transpose(2, 0, 1)
        fill_chw = fill_image.astype(np.float32) * np.float32(1 / 255)  # (3, S, S)
        difference = (image - fill_chw) * mask  # Phi(X, M) = A + (X - A) M;  Phi(X, 1 - M) = X - (X - A) M
        return np.stack([fill_chw + difference, image - difference])

    @staticmethod
    def _fill_at(fill: np.ndarray | float, width: int, height: int) -> np.ndarray:
        if isinstance(fill, np.ndarray):
            return cv2.resize(fill, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.full((height, width, 3), round(fill), dtype=np.uint8)


def _to_u8(fill: np.ndarray | float) -> np.ndarray | float:
    return cv2.convertScaleAbs(fill) if isinstance(fill, np.ndarray) else fill


def full_resolution(explanation: Explanation) -> Explanation:
    """The same explanation with its views (and mask and box) made again at the frame's own size: for snapshots of
    what the live view showed at display size. Returns `explanation` itself when its views are already full size."""
    frame = explanation.frame
    if explanation.mask.shape == frame.shape[:2]:
        return explanation
    ops = HostCompositor(explanation.model_image.shape[0])
    fill_low = ops.fill_low(explanation.model_image, explanation.fill)
    views = ops.views(frame, explanation.mask_low, fill_low, explanation.opacity)
    return replace(
        explanation,
        mask=views.mask,
        overlay=views.overlay,
        mask_image=views.mask_image,
        preserved=views.preserved,
        destroyed=views.destroyed,
        box=mask_box(views.mask),
    )
