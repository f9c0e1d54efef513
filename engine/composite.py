"""Frame compositing: the views of an explanation, in two interchangeable implementations.

- `NumpyCompositor`: OpenCV on uint8 frames (CPU backends; the fastest path on a CPU).
- `TorchCompositor`: torch on the backend's device (GPU backends: frames stay on the GPU until the final uint8 views).

Both compute the same things (tests check they agree):
- the model input: the frame resized to S x S (antialiased), float32 in [0, 1], (B, 3, S, S);
- the fill A of Phi(X, M) = X * M + A * (1 - M): "blur" = X under a Gaussian blur of sigma 10 px at S = 224
  (computed at S/4 with sigma 2.5 and upsampled: same result for a blur that strong, a fraction of the cost),
  "grey" = 0.5, "black" = 0;
- the mask at frame resolution (bilinear from the model's S/4 mask), the heat map (JET), the overlay
  (1 - opacity) * frame + opacity * heat, preserved = Phi(X, M), destroyed = Phi(X, 1 - M);
- the evidence inputs: preserved and destroyed at S x S, for the black box.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.contract import FILLS

BLUR_SIGMA_AT_224 = 10.0
GREY = 0.5


@dataclass
class Views:
    """The uint8 (H, W, 3) RGB views of one frame plus its float32 (H, W) mask."""

    mask: np.ndarray
    overlay: np.ndarray
    mask_image: np.ndarray
    preserved: np.ndarray
    destroyed: np.ndarray


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
    return fill


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


# --- OpenCV / numpy ------------------------------------------------------------------------------------------


class NumpyCompositor:
    """uint8 OpenCV compositing for CPU backends. Frames: (H, W, 3) uint8 RGB numpy arrays."""

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size
        self.blur_side, self.blur_sigma = blur_size(input_size)
        self.lut = heat_lut().reshape(256, 1, 3)

    # Everything here is numpy / OpenCV, never torch ops: on a busy CPU, torch's intra-op thread pool turns a
    # 0.1 ms conversion into tens of milliseconds (measured), and OpenCV's uint8 kernels are fast anyway.

    def resize(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Each frame at the model's S x S (uint8)."""
        size = self.input_size
        return [cv2.resize(frame, (size, size), interpolation=_down(frame, size)) for frame in frames]

    @staticmethod
    def model_input(resized: list[np.ndarray]) -> np.ndarray:
        """(B, 3, S, S) float32 in [0, 1] from the resized frames."""
        batch = np.stack(resized).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.float32) * np.float32(1 / 255)

    def fill_low(self, resized: np.ndarray, fill: str) -> np.ndarray | float:
        """The fill at S/4 x S/4 (blur, from the S x S frame: the same pixels as from the full frame, for less) or
        as a constant in 0..255."""
        if fill == "blur":
            side = self.blur_side
            small = cv2.resize(resized, (side, side), interpolation=_down(resized, side))
            return cv2.GaussianBlur(small, (0, 0), self.blur_sigma)
        return 255 * GREY if fill == "grey" else 0.0

    def views(self, frame: np.ndarray, mask_low: np.ndarray, fill_low: np.ndarray | float, opacity: float) -> Views:
        """mask_low: (h, w) float32 in [0, 1]; fill_low from `fill_low` -> the views at the frame's size."""
        height, width = frame.shape[:2]
        mask = cv2.resize(mask_low, (width, height), interpolation=cv2.INTER_LINEAR)
        np.clip(mask, 0.0, 1.0, out=mask)
        mask_u8 = cv2.convertScaleAbs(mask, alpha=255.0)
        heat = cv2.applyColorMap(mask_u8, self.lut)
        overlay = cv2.addWeighted(frame, 1.0 - opacity, heat, opacity, 0.0)
        fill_frame = self._fill_at(fill_low, width, height)
        inverse = 1.0 - mask
        preserved = cv2.blendLinear(frame, fill_frame, mask, inverse)
        destroyed = cv2.blendLinear(frame, fill_frame, inverse, mask)
        return Views(mask, overlay, heat, preserved, destroyed)

    def evidence_input(self, image: np.ndarray, mask_low: np.ndarray, fill_low: np.ndarray | float) -> np.ndarray:
        """(2, 3, S, S) float32: Phi(X, M) and Phi(X, 1 - M) at the model's input size (image: (3, S, S))."""
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


def _down(frame: np.ndarray, size: int) -> int:
    """INTER_AREA (antialiased) when shrinking both sides, else bilinear (TorchCompositor follows the same rule)."""
    return cv2.INTER_AREA if min(frame.shape[:2]) >= size else cv2.INTER_LINEAR


# --- torch (any device) -------------------------------------------------------------------------------------


class TorchCompositor:
    """The same compositing as torch ops on `device`. Frames: (B, H, W, 3) uint8 tensors on that device."""

    def __init__(self, input_size: int, device: torch.device) -> None:
        self.input_size = input_size
        self.device = device
        self.blur_side, sigma = blur_size(input_size)
        self.lut = torch.from_numpy(heat_lut()).to(device)  # (256, 3) uint8
        radius = max(int(3 * sigma + 0.5), 1)  # cv2.GaussianBlur's kernel for uint8 images
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        self.kernel = (kernel / kernel.sum()).to(device)  # (2r + 1,)

    def upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(frames))
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch  # (B, H, W, 3) uint8

    def model_input(self, frames: torch.Tensor) -> torch.Tensor:
        images = frames.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in 0..255
        # rounded to whole levels as OpenCV's uint8 resize does: both compositors feed the model the same input
        return self._shrink(images, self.input_size).round_().div_(255)

    def _shrink(self, images: torch.Tensor, size: int) -> torch.Tensor:
        """To size x size: pixel-area averaging when shrinking both sides (exactly cv2's INTER_AREA, as two
        small matrix products), else bilinear; the same rule as NumpyCompositor's."""
        height, width = images.shape[-2:]
        if min(height, width) < size:  # plain bilinear, as cv2.INTER_LINEAR
            return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        rows = _area_matrix(height, size, self.device)  # (size, H)
        cols = _area_matrix(width, size, self.device)  # (size, W)
        return rows @ images @ cols.T  # (B, 3, size, size)

    def fill_low(self, images: torch.Tensor, fill: str) -> torch.Tensor:
        """(B, 3, s, s) blurred frames at S/4 (from the model input), or a (1, 3, 1, 1) constant, in [0, 1]."""
        if fill == "blur":
            return self._gaussian(self._shrink(images, self.blur_side))
        value = GREY if fill == "grey" else 0.0
        return torch.full((1, 3, 1, 1), value, device=self.device)

    def _gaussian(self, images: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian with reflect-101 borders (as cv2.GaussianBlur)."""
        radius = (self.kernel.numel() - 1) // 2
        channels = images.shape[1]
        horizontal = self.kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        vertical = self.kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        pad_w = min(radius, images.shape[-1] - 1)
        pad_h = min(radius, images.shape[-2] - 1)
        if pad_w < radius or pad_h < radius:  # reflect padding needs more pixels than the radius
            return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
        images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=channels)
        return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="reflect"), vertical, groups=channels)

    def views(
        self, frames: torch.Tensor, mask_low: torch.Tensor, fill_low: torch.Tensor, opacity: float
    ) -> list[Views]:
        """frames (B, H, W, 3) uint8, mask_low (B, 1, h, w), fill_low from `fill_low` -> views; only the final
        images leave the device."""
        height, width = frames.shape[1:3]
        images = frames.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in 0..255
        mask = _resize(mask_low, height, width).clamp_(0, 1)  # (B, 1, H, W)
        mask_u8 = (mask * 255).round_().to(torch.uint8)
        heat = self.lut[mask_u8[:, 0].long()]  # (B, H, W, 3) uint8
        overlay = images * (1 - opacity) + heat.permute(0, 3, 1, 2).float() * opacity
        fill_frame = self._fill_at(fill_low, height, width) * 255
        preserved = images * mask + fill_frame * (1 - mask)
        destroyed = images * (1 - mask) + fill_frame * mask
        images_u8 = torch.stack([_to_u8(overlay), heat, _to_u8(preserved), _to_u8(destroyed)], dim=1)  # (B, 4, H, W, 3)
        views_host, mask_host = self._to_host(images_u8), self._to_host(mask[:, 0])
        return [
            Views(mask_host[index], *(views_host[index, view] for view in range(4))) for index in range(frames.shape[0])
        ]

    def _to_host(self, tensor: torch.Tensor) -> np.ndarray:
        """One copy to the host; from a GPU into page-locked memory (the fastest transfer). The array owns its
        memory, so later frames never overwrite an explanation the caller still holds."""
        if self.device.type != "cuda":
            return tensor.contiguous().numpy()
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def evidence_input(self, images: torch.Tensor, mask_low: torch.Tensor, fill_low: torch.Tensor) -> torch.Tensor:
        """(2B, 3, S, S): Phi(X, M) for every frame, then Phi(X, 1 - M) for every frame."""
        size = self.input_size
        mask = _resize(mask_low, size, size).clamp_(0, 1)
        fill_image = self._fill_at(fill_low, size, size)
        preserved = images * mask + fill_image * (1 - mask)
        destroyed = images * (1 - mask) + fill_image * mask
        return torch.cat([preserved, destroyed])

    @staticmethod
    def _fill_at(fill: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return fill if fill.shape[-1] == 1 else _resize(fill, height, width)


@lru_cache(maxsize=16)
def _area_matrix(source: int, target: int, device: torch.device) -> torch.Tensor:
    """(target, source) weights: output pixel i averages source pixels over [i, i + 1) * source / target."""
    scale = source / target
    starts = torch.arange(target, dtype=torch.float64)[:, None] * scale  # (target, 1)
    pixels = torch.arange(source, dtype=torch.float64)[None, :]  # (1, source)
    overlap = (torch.minimum(pixels + 1, starts + scale) - torch.maximum(pixels, starts)).clamp_(min=0)
    return (overlap / scale).float().to(device)


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    shrinking = images.shape[-2] > height or images.shape[-1] > width
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)


def _to_u8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in 0..255 -> (B, H, W, 3) uint8."""
    return images.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
