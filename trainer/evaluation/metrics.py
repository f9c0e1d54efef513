"""Localisation and saliency metrics of Dabkowski & Gal (2017), section 5.

Boxes are (x0, y0, x1, y1) in pixel-edge coordinates: pixel (row i, column j) covers [j, j+1) x [i, i+1), so the
tightest box around pixels in columns 3..5 is x0 = 3, x1 = 6 (the ground-truth boxes use the same convention).

- Paper protocol: threshold the mask at 0.5, tightest box around ALL pixels above it; an empty mask is a miss.
- Mean protocol (Phang et al.): threshold at the mask's mean, box of the largest 8-connected component.
- Hit: IoU > 0.5 with any ground-truth box (torchvision's box_iou).
- Saliency metric s = log(max(a, 0.05)) - log(p): crop the box at integer pixel bounds, resize to the black box's
  input ignoring the aspect ratio (bicubic, clamped to 0..255), p = black-box probability of the class on the crop,
  a = box area / image area. Lower is better.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

PAPER_THRESHOLD = 0.5
HIT_IOU = 0.5
MIN_AREA = 0.05


def box_paper(mask: np.ndarray, threshold: float = PAPER_THRESHOLD) -> np.ndarray | None:
    """Tightest box around every pixel of `mask` (H, W) above `threshold`; None when there is none."""
    rows, cols = np.nonzero(mask > threshold)
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=float)


def box_mean(mask: np.ndarray) -> np.ndarray | None:
    """Box of the largest 8-connected component of `mask >= mean(mask)` (a constant mask is salient everywhere)."""
    binary = (mask >= mask.mean()).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:  # label 0 is the background
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    left, top, width, height = (
        stats[largest, key] for key in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT)
    )
    return np.array([left, top, left + width, top + height], dtype=float)


def best_iou(box: np.ndarray | None, gt_boxes: np.ndarray) -> float:
    """The largest IoU of `box` with any ground-truth box (K, 4); 0 for no box."""
    if box is None:
        return 0.0
    ious = box_iou(torch.as_tensor(box, dtype=torch.float64)[None], torch.as_tensor(gt_boxes, dtype=torch.float64))
    return float(ious.max())


def is_hit(box: np.ndarray | None, gt_boxes: np.ndarray, threshold: float = HIT_IOU) -> bool:
    return best_iou(box, gt_boxes) > threshold


def center_box(width: int, height: int) -> np.ndarray:
    """The centred box with half the image's area (each side scaled by 1/sqrt(2))."""
    side = 1 / math.sqrt(2)
    w, h = width * side, height * side
    return np.array([(width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2])


def full_box(width: int, height: int) -> np.ndarray:
    return np.array([0.0, 0.0, float(width), float(height)])


def boxes_mask(boxes: list[np.ndarray], width: int, height: int, size: int) -> np.ndarray:
    """(size, size) float32, 1 on the pixels whose centre lies in any of `boxes` (given in width x height pixels)."""
    centres_x = (np.arange(size) + 0.5) * width / size
    centres_y = (np.arange(size) + 0.5) * height / size
    mask = np.zeros((size, size), dtype=np.float32)
    for x0, y0, x1, y1 in boxes:
        inside_x = (centres_x >= x0) & (centres_x < x1)
        inside_y = (centres_y >= y0) & (centres_y < y1)
        mask[np.ix_(inside_y, inside_x)] = 1.0
    return mask


def pixel_bounds(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The box rounded to the nearest pixel edges, inside the image and at least one pixel wide and high."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, x1 = min(max(x0, 0), width - 1), min(max(x1, 1), width)
    y0, y1 = min(max(y0, 0), height - 1), min(max(y1, 1), height)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def crop_resize(image: np.ndarray, box: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """uint8 (H, W, 3) -> (the box's crop resized to size x size, bicubic, uint8; the box's area fraction).

    The crop is taken at the rounded pixel bounds; the area is the box's own (inside the image), so the Center box
    has a = 0.5 exactly."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = pixel_bounds(box, width, height)
    crop = image[y0:y1, x0:x1]
    # cv2's bicubic on uint8 saturates to 0..255 (the clamp the reference numbers were computed with)
    resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)
    left, top, right, bottom = np.clip(np.asarray(box, dtype=float), 0, [width, height, width, height])
    area = max(right - left, 0.0) * max(bottom - top, 0.0) / (width * height)
    return resized, area


def saliency_metric(area: float, probability: float) -> float:
    """s(a, p) = log(max(a, 0.05)) - log(p); p is floored at 1e-12 so a zero probability stays finite."""
    return math.log(max(area, MIN_AREA)) - math.log(max(probability, 1e-12))


@torch.no_grad()
def crop_probabilities(
    blackbox: torch.nn.Module, crops: list[np.ndarray], labels: list[int], device: torch.device | str
) -> np.ndarray:
    """Black-box softmax probability of labels[i] on crops[i] (uint8 (S, S, 3) each)."""
    if not crops:
        return np.zeros(0)
    batch = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float() / 255  # (N, 3, S, S)
    probabilities = F.softmax(blackbox(batch).float(), dim=1)
    index = torch.as_tensor(labels, device=probabilities.device)[:, None]
    return probabilities.gather(1, index)[:, 0].cpu().numpy()


def saliency_scores(
    blackbox: torch.nn.Module,
    images: list[np.ndarray],
    boxes: list[list[np.ndarray]],
    labels: list[int],
    device: torch.device | str,
    input_size: int = 224,
) -> list[float]:
    """Per image: the saliency metric of each of its boxes, averaged over them (the paper's rule for GT boxes)."""
    crops, crop_labels, areas, owners = [], [], [], []
    for index, (image, image_boxes, label) in enumerate(zip(images, boxes, labels)):
        for box in image_boxes:
            crop, area = crop_resize(image, box, input_size)
            crops.append(crop)
            crop_labels.append(label)
            areas.append(area)
            owners.append(index)
    probabilities = crop_probabilities(blackbox, crops, crop_labels, device)
    per_image: list[list[float]] = [[] for _ in images]
    for owner, area, probability in zip(owners, areas, probabilities):
        per_image[owner].append(saliency_metric(area, float(probability)))
    return [float(np.mean(values)) if values else float("nan") for values in per_image]
