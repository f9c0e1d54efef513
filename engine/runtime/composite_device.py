"""Frame compositing with torch on the backend's device (the GPU backends: a frame is uploaded once and only the
final uint8 views come back). The same pictures as engine/runtime/composite_host.py computes with OpenCV on the CPU
(tests check that they agree); the definitions of every picture are written there.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from engine.runtime.composite_host import GREY, Views, blur_size, heat_lut


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
        return self._shrink(images, self.input_size, self.input_size).round_().div_(255)

    def shown(self, frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, H, W, 3) uint8 frames at (width, height) for display, by the same rule as the model's input."""
        if (frames.shape[2], frames.shape[1]) == size:
            return frames
        images = frames.permute(0, 3, 1, 2).float()
        resized = self._shrink(images, size[1], size[0]).round_().clamp_(0, 255)
        return resized.to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def _shrink(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """To height x width: pixel-area averaging when shrinking both sides (exactly cv2's INTER_AREA, as two
        small matrix products), else bilinear; the same rule as engine.runtime.composite_host.resize_to."""
        source_height, source_width = images.shape[-2:]
        if source_height < height or source_width < width:  # plain bilinear, as cv2.INTER_LINEAR
            return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
        rows = _area_matrix(source_height, height, self.device)  # (height, H)
        cols = _area_matrix(source_width, width, self.device)  # (width, W)
        return rows @ images @ cols.T  # (B, 3, height, width)

    def fill_low(self, images: torch.Tensor, fill: str) -> torch.Tensor:
        """(B, 3, s, s) blurred frames at S/4 (from the model input), or a (1, 3, 1, 1) constant, in [0, 1]."""
        if fill == "blur":
            return self._gaussian(self._shrink(images, self.blur_side, self.blur_side))
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

    def to_host_images(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, S, S) float images in [0, 1] -> (B, S, S, 3) uint8 on the host (what the model saw, kept for the
        evidence check made later)."""
        return self._to_host(_to_u8(images * 255))

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
