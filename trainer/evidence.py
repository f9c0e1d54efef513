"""Evidence removal, eq. 2 and 6 of the paper: Phi(X, M) = X * M + A * (1 - M).

A, the alternative image, is drawn afresh at every call and per image: with probability 1/2 the image under a
strong Gaussian blur (sigma 10 pixels at 224 x 224, scaled with the image size), otherwise a random constant colour
plus Gaussian noise. Drawing it anew stops the masking model from learning to exploit one fixed fill (a grey fill
that the classifier reads as "fog", say).
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as TF

REFERENCE_SIZE = 224


def blur(images: torch.Tensor, sigma_at_224: float = 10.0) -> torch.Tensor:
    """Gaussian blur of (B, 3, H, W) images, sigma given for 224-pixel images and scaled to this width.

    The 2-D Gaussian is separable, so two 1-D passes (torchvision's gaussian_blur with a (k, 1) then a (1, k)
    kernel) give the same result as the 61 x 61 kernel at a 30th of the cost.
    """
    sigma = sigma_at_224 * images.shape[-1] / REFERENCE_SIZE
    radius = min(math.ceil(3 * sigma), min(images.shape[-2:]) - 1)  # reflect padding needs radius < size
    size = 2 * radius + 1
    horizontal = TF.gaussian_blur(images, kernel_size=[size, 1], sigma=[sigma, sigma])
    return TF.gaussian_blur(horizontal, kernel_size=[1, size], sigma=[sigma, sigma])


def noisy_colour(
    images: torch.Tensor, noise_std: float = 0.2, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random constant colour per image (uniform in [0, 1]^3) plus Gaussian noise, clipped to [0, 1]."""
    batch = images.shape[0]
    colour = torch.rand(batch, 3, 1, 1, generator=generator, device=images.device, dtype=images.dtype)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (colour + noise_std * noise).clamp_(0, 1)


def random_alternative(
    images: torch.Tensor,
    blur_probability: float = 0.5,
    sigma_at_224: float = 10.0,
    noise_std: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A per image: the blurred image with probability `blur_probability`, else a noisy constant colour."""
    use_blur = torch.rand(images.shape[0], 1, 1, 1, generator=generator, device=images.device) < blur_probability
    return torch.where(use_blur, blur(images, sigma_at_224), noisy_colour(images, noise_std, generator))


def remove_evidence(images: torch.Tensor, mask: torch.Tensor, alternative: torch.Tensor) -> torch.Tensor:
    """Phi(X, M): keep X where the mask is 1, show the alternative where it is 0. mask (B, 1, H, W)."""
    return images * mask + alternative * (1 - mask)
