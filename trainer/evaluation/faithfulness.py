"""Faithfulness of a saliency map to the black box it explains, measured by what the black box does.

- Deletion and insertion (Petsiuk et al., "RISE", BMVC 2018): pixels are removed from the image (deletion) or added
  to the removed-evidence image (insertion) in the order of the map, most salient first, `steps` equal steps of
  pixels; after each step the black box's softmax probability of the target. The curve runs over the fraction of
  pixels from 0 to 1 (steps + 1 points, the trapezoid rule); deletion AUC: lower is better (the evidence goes
  first), insertion AUC: higher is better. Removed pixels show the blurred image (sigma 10 pixels at 224, the
  paper's evidence removal, as the app's default fill), the same for every method; pixels with equal saliency are
  taken in one fixed random order per image, so a flat map (the whole-image box) gives the random-order curve and
  a binary map (a box, a thresholded mask) is never ordered by its pixel positions.
- The app's evidence as dataset figures (Dabkowski & Gal): the map thresholded as its localisation protocol
  thresholds it (above 0.5; boxes: the box), the preserved view Phi(X, M) and the destroyed view Phi(X, 1 - M) with
  the same blurred fill; SSR holds when the preserved view keeps at least half of the target's probability on the
  image, SDR holds when the destroyed view leaves at most a tenth of it.

Why not a packaged metric: the grad-cam package's perturbation metrics (ROAD, "remove most relevant first") remove
the pixels above a percentile of the map (`map < np.percentile(map, p)`), so on maps with ties (boxes, nearly
binary masks, Grad-CAM's zeros) a step removes a different number of pixels for each method; Captum's metrics are
infidelity and sensitivity. Here every step removes exactly the same number of pixels for every method, and the
black box sees every step of a batch in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_STEPS = 8
SSR_KEEPS = 0.5  # SSR holds: the preserved view keeps at least this share of the target's probability
SDR_LEAVES = 0.1  # SDR holds: the destroyed view leaves at most this share of it


@dataclass
class Reference:
    """The black box on the whole images and on their removed-evidence images, once per batch for every method."""

    alternative: torch.Tensor  # (B, 3, S, S): what removed pixels show
    image_probability: torch.Tensor  # (B,) target probability on the image
    alternative_probability: torch.Tensor  # (B,) target probability on the alternative


@torch.no_grad()
def target_probabilities(
    blackbox: nn.Module, images: torch.Tensor, classes: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """Softmax probability of classes[i] on images[i], (B,); the black box sees at most `chunk` images at once."""
    values = []
    for part, targets in zip(images.split(chunk), classes.split(chunk)):
        probabilities = F.softmax(blackbox(part).float(), dim=1)
        values.append(probabilities.gather(1, targets[:, None])[:, 0])
    return torch.cat(values)


def reference(
    blackbox: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    alternative: torch.Tensor,
    image_probability: torch.Tensor | None = None,
) -> Reference:
    """The black box on the alternative (and on the images, unless their probabilities are given)."""
    if image_probability is None:
        image_probability = target_probabilities(blackbox, images, classes)
    return Reference(alternative, image_probability, target_probabilities(blackbox, alternative, classes))


def saliency_order(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, H, W) maps -> (B, H*W) pixel indices, most salient first; equal values in a fixed random order per image
    (the same for every method: the order depends on `seed` and the image's place in the batch only)."""
    flat = maps.flatten(1).float()
    generator = torch.Generator().manual_seed(seed)
    shuffle = torch.stack([torch.randperm(flat.shape[1], generator=generator) for _ in range(flat.shape[0])])
    shuffle = shuffle.to(flat.device)
    by_value = flat.gather(1, shuffle).sort(dim=1, descending=True, stable=True).indices
    return shuffle.gather(1, by_value)


def step_masks(order: torch.Tensor, steps: int, height: int, width: int) -> torch.Tensor:
    """(B, steps - 1, 1, H, W) float masks: at inner step k the first round(k / steps * H * W) pixels of `order`."""
    pixels = order.shape[1]
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels, device=order.device).expand_as(order))  # (B, H*W) place in order
    counts = torch.tensor([round(k * pixels / steps) for k in range(1, steps)], device=order.device)
    masks = rank[:, None, :] < counts[None, :, None]  # (B, steps - 1, H*W)
    return masks.float().reshape(order.shape[0], steps - 1, 1, height, width)


@torch.no_grad()
def deletion_insertion(
    blackbox: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    maps: torch.Tensor,
    ref: Reference,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(deletion curves, insertion curves), each (B, steps + 1): the target's probability after 0..steps steps.

    images (B, 3, S, S) in [0, 1]; maps (B, 1, S, S) or (B, S, S) at the same size, any range (only the order
    counts)."""
    batch, _, height, width = images.shape
    order = saliency_order(maps.reshape(batch, height, width), seed)
    kept = step_masks(order, steps, height, width)  # (B, steps - 1, 1, H, W): the most salient pixels at each step
    image, alternative = images[:, None], ref.alternative[:, None]  # (B, 1, 3, H, W)
    deleted = (image * (1 - kept) + alternative * kept).flatten(0, 1)  # (B * (steps - 1), 3, H, W)
    inserted = (image * kept + alternative * (1 - kept)).flatten(0, 1)
    targets = classes.repeat_interleave(steps - 1)
    inner = target_probabilities(blackbox, torch.cat([deleted, inserted]), torch.cat([targets, targets]))
    inner_deletion, inner_insertion = inner.reshape(2, batch, steps - 1)
    start, end = ref.image_probability[:, None], ref.alternative_probability[:, None]
    return torch.cat([start, inner_deletion, end], 1), torch.cat([end, inner_insertion, start], 1)


def area_under(curves: torch.Tensor) -> np.ndarray:
    """Trapezoid area under (B, steps + 1) curves sampled evenly over [0, 1]."""
    values = curves.double().cpu().numpy()
    return (values[:, 1:] + values[:, :-1]).sum(axis=1) / (2 * (values.shape[1] - 1))


@torch.no_grad()
def evidence(
    blackbox: nn.Module, images: torch.Tensor, classes: torch.Tensor, masks: torch.Tensor, ref: Reference
) -> tuple[torch.Tensor, torch.Tensor]:
    """(preserved, destroyed) target probabilities (B,) for masks (B, 1, S, S) in [0, 1]: Phi(X, M), Phi(X, 1 - M)."""
    preserved = images * masks + ref.alternative * (1 - masks)
    destroyed = images * (1 - masks) + ref.alternative * masks
    both = target_probabilities(blackbox, torch.cat([preserved, destroyed]), torch.cat([classes, classes]))
    return both.chunk(2)  # type: ignore[return-value]


def ssr_holds(preserved: torch.Tensor, ref: Reference) -> torch.Tensor:
    return preserved >= SSR_KEEPS * ref.image_probability


def sdr_holds(destroyed: torch.Tensor, ref: Reference) -> torch.Tensor:
    return destroyed <= SDR_LEAVES * ref.image_probability
