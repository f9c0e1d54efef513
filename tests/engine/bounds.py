"""The FP32 agreement bound of engine.tolerances, carried from the model's mask (S/4) to the pipeline's frame-sized
mask, for tests that compare two backends or two batchings through `Explainer`."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.export.check import reference_outputs
from engine.runtime.composite_host import HostCompositor
from engine.tolerances import RATIO_ROUNDING


def frame_mask_bounds(graphs, frames: list[np.ndarray], targets: list[int]) -> list[np.ndarray]:
    """Per frame, (H, W): the most a backend's frame-sized mask may differ from PyTorch FP32's.

    The reference runs on the model input the host pipeline builds (HostCompositor). The pipeline's mask is the
    S/4 mask resized bilinearly: each output pixel is a convex combination of a 2 x 2 block of the S/4 mask, so its
    difference is at most the block's largest bound; a 3 x 3 dilation before the (convex) resize covers that block,
    and the resize's own rounding is a few units of roundoff more (RATIO_ROUNDING).
    """
    ops = HostCompositor(graphs.input_size)
    images = torch.from_numpy(ops.model_input([ops.model_image(frame) for frame in frames]))
    reference = reference_outputs(graphs.saliency, {"image": images, "target": torch.tensor(targets)})
    bounds = []
    for frame, bound_low in zip(frames, reference.mask_bound()[:, 0].astype(np.float32)):
        dilated = cv2.dilate(bound_low, np.ones((3, 3), np.uint8))
        height, width = frame.shape[:2]
        bounds.append(cv2.resize(dilated, (width, height), interpolation=cv2.INTER_LINEAR) + RATIO_ROUNDING)
    return bounds
