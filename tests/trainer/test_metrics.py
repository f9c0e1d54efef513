"""Box extraction, IoU and the saliency metric on hand-made masks and images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainer.evaluation.metrics import (
    best_iou,
    box_mean,
    box_paper,
    center_box,
    crop_resize,
    full_box,
    is_hit,
    pixel_bounds,
    saliency_metric,
    saliency_scores,
)


def blobs() -> np.ndarray:
    """A 20 x 30 mask: a 4 x 4 blob at rows 2..5, cols 3..6 and a 6 x 8 blob at rows 10..15, cols 18..25."""
    mask = np.zeros((20, 30))
    mask[2:6, 3:7] = 0.9
    mask[10:16, 18:26] = 0.8
    return mask


def test_empty_mask_has_no_box_and_misses():
    mask = np.zeros((10, 10))
    assert box_paper(mask) is None
    assert box_mean(mask) is not None  # a constant map is salient everywhere under the mean protocol
    assert not is_hit(None, np.array([[0, 0, 10, 10]]))
    assert best_iou(None, np.array([[0, 0, 10, 10]])) == 0.0


def test_full_mask_boxes_the_whole_image():
    mask = np.ones((12, 17))
    np.testing.assert_array_equal(box_paper(mask), [0, 0, 17, 12])
    np.testing.assert_array_equal(box_mean(mask), [0, 0, 17, 12])


def test_two_blobs_paper_boxes_both_mean_boxes_the_larger():
    mask = blobs()
    np.testing.assert_array_equal(box_paper(mask), [3, 2, 26, 16])
    np.testing.assert_array_equal(box_mean(mask), [18, 10, 26, 16])


def test_blob_touching_the_border():
    mask = np.zeros((20, 30))
    mask[12:20, 25:30] = 1.0  # bottom-right corner
    np.testing.assert_array_equal(box_paper(mask), [25, 12, 30, 20])
    np.testing.assert_array_equal(box_mean(mask), [25, 12, 30, 20])


def test_paper_threshold_is_strictly_above_one_half():
    mask = np.full((8, 8), 0.5)
    mask[1, 2] = 0.51
    np.testing.assert_array_equal(box_paper(mask), [2, 1, 3, 2])


def test_mean_protocol_thresholds_at_the_mean_not_at_one_half():
    mask = np.full((10, 10), 0.1)
    mask[4:7, 2:5] = 0.3  # never above 0.5, but above the mean
    assert box_paper(mask) is None
    np.testing.assert_array_equal(box_mean(mask), [2, 4, 5, 7])


def test_iou_and_hit_rule():
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert best_iou(np.array([5.0, 0.0, 15.0, 10.0]), gt) == pytest.approx(50 / 150)
    assert best_iou(np.array([20.0, 20.0, 30.0, 30.0]), gt) == pytest.approx(1.0)  # any GT box counts
    half = np.array([0.0, 0.0, 10.0, 5.0])  # IoU exactly 0.5: not a hit (IoU must exceed 0.5)
    assert best_iou(half, gt) == pytest.approx(0.5)
    assert not is_hit(half, gt)
    assert is_hit(np.array([0.0, 0.0, 10.0, 6.0]), gt)


def test_center_box_has_half_the_area_and_is_centred():
    x0, y0, x1, y1 = center_box(227, 100)
    assert (x1 - x0) * (y1 - y0) == pytest.approx(227 * 100 / 2)
    assert (x0 + x1) / 2 == pytest.approx(113.5) and (y0 + y1) / 2 == pytest.approx(50)
    np.testing.assert_array_equal(full_box(227, 100), [0, 0, 227, 100])


def test_pixel_bounds_round_to_nearest_and_stay_inside():
    assert pixel_bounds(np.array([33.25, 33.5, 193.75, 226.6]), 227, 227) == (33, 34, 194, 227)
    assert pixel_bounds(np.array([-3.0, 5.2, 400.0, 5.3]), 227, 227) == (0, 5, 227, 6)  # at least one pixel


def test_crop_resize_area_and_clamping():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 20:] = 255  # a hard edge: bicubic overshoots it, the result must stay in 0..255
    crop, area = crop_resize(image, np.array([10.0, 0.0, 30.0, 20.0]), 16)
    assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8
    assert area == pytest.approx(20 * 20 / (20 * 40))
    assert crop[:, 0].max() == 0 and crop[:, -1].min() == 255
    _, area = crop_resize(image, np.array([10.4, -5.0, 30.0, 20.0]), 16)  # the box's own area, inside the image
    assert area == pytest.approx(19.6 * 20 / (20 * 40))


def test_saliency_metric_formula():
    assert saliency_metric(0.25, 0.25) == pytest.approx(0.0)
    assert saliency_metric(0.01, 0.5) == pytest.approx(math.log(0.05) - math.log(0.5))  # area floored at 0.05
    assert math.isfinite(saliency_metric(0.5, 0.0))


class Brightness(nn.Module):
    """A two-class classifier whose class-1 probability is the mean brightness of its input."""

    input_size = 16

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        brightness = images.mean(dim=(1, 2, 3)).clamp(1e-4, 1 - 1e-4)
        return torch.stack([torch.log(1 - brightness), torch.log(brightness)], dim=1)


def test_saliency_scores_on_a_hand_made_image():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white: p(class 1) on a crop = the crop's brightness
    white_half = np.array([0.0, 0.0, 20.0, 20.0])  # a = 0.5, p = 1: s = log 0.5
    whole = full_box(40, 20)  # a = 1, p = 0.5: s = log 2
    scores = saliency_scores(Brightness(), [image, image], [[white_half], [white_half, whole]], [1, 1], "cpu", 16)
    # Brightness clamps p to 1 - 1e-4, which moves log p by 1e-4 (measured on AMD: 1.0e-4 and 5.0e-5)
    assert scores[0] == pytest.approx(math.log(0.5), abs=1e-3)
    assert scores[1] == pytest.approx((math.log(0.5) + math.log(2)) / 2, abs=0.02)  # averaged over the boxes
