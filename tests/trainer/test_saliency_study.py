"""The saliency-metric study: its cache of crops, its summary and its choice of part-over-object examples."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from trainer.data.boxes import Sample
from trainer.studies.saliency_study import CropCache, part_examples, summarise


class Counting(nn.Module):
    """A black box that counts the images it sees and answers class 0 with a probability that grows with the
    brightness of the crop."""

    input_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen += len(images)
        brightness = images.mean((1, 2, 3))
        return torch.stack([4 * brightness, torch.zeros_like(brightness)], dim=1)


def test_crops_are_classified_once_per_image_and_rounded_box():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:8, :8] = 255
    sample = Sample("a.jpg", 0, image, np.array([[0.0, 0.0, 8.0, 8.0]]), 0)
    blackbox = Counting()
    cache = CropCache(blackbox, torch.device("cpu"))
    bright, dark = np.array([0.0, 0.0, 8.0, 8.0]), np.array([8.0, 8.0, 16.0, 16.0])
    first = cache.probabilities([sample, sample, sample], [bright, dark, np.array([0.2, 0.1, 7.9, 8.3])])
    assert blackbox.seen == 2  # the third box rounds to the first
    assert first[0] == first[2] and first[0] > first[1]
    assert first[1] == 0.5  # an all-black crop: logits (0, 0)
    cache.probabilities([sample], [dark])
    assert blackbox.seen == 2


def test_summary_terms_add_up_and_parts_are_found():
    rows = [
        {
            "file": "x",
            "method": "gt",
            "threshold": "",
            "boxes": 1,
            "hit": 1,
            "area": 0.6,
            "gt_area": 0.6,
            "probability": 0.3,
            "saliency": math.log(0.6) - math.log(0.3),
        },
        {
            "file": "x",
            "method": "gradcam",
            "threshold": 0.5,
            "boxes": 1,
            "hit": 0,
            "area": 0.04,
            "gt_area": 0.6,
            "probability": 0.9,
            "saliency": math.log(0.05) - math.log(0.9),
        },
        {
            "file": "y",
            "method": "gt",
            "threshold": "",
            "boxes": 2,
            "hit": 1,
            "area": 0.3,
            "gt_area": 0.3,
            "probability": 0.5,
            "saliency": math.log(0.3) - math.log(0.5),
        },
        {
            "file": "y",
            "method": "gradcam",
            "threshold": 0.5,
            "boxes": 2,
            "hit": 1,
            "area": 0.3,
            "gt_area": 0.3,
            "probability": 0.5,
            "saliency": math.log(0.3) - math.log(0.5),
        },
    ]
    line = summarise([r for r in rows if r["method"] == "gradcam"])
    assert line["loc_error_paper"] == 50.0
    assert line["floored_share"] == 50.0 and line["smaller_than_gt_share"] == 50.0
    assert math.isclose(line["saliency_metric"], line["log_area_term"] + line["minus_log_p_term"], abs_tol=2e-4)
    assert line["images_several_boxes"] == 1
    assert part_examples(rows, 5) == ["x"]  # y's box is the object's own
