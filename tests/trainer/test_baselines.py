"""Every baseline explains the real Lite0 black box on 2 tiny images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.evaluation.baselines import (
    CenterBox,
    GatedMaskingModel,
    GradCam,
    Gradient,
    GroundTruthBoxes,
    IterativeMask,
    MaskingModel,
    MaxBox,
    MethodContext,
    create_method,
    normalise_per_image,
)


@pytest.fixture(scope="module")
def tiny_images() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 48, 48, generator=generator)
    images[:, :, 12:36, 12:36] = 0.9  # a bright square in the middle
    return images, torch.tensor([1, 409])


def check_maps(maps: torch.Tensor, normalised: bool) -> None:
    assert maps.shape == (2, 1, 48, 48)
    assert torch.isfinite(maps).all()
    if normalised:
        maps = normalise_per_image(maps)
    assert maps.min() >= 0 and maps.max() <= 1
    assert (maps.flatten(1).std(1) > 0).all()  # a map that says something, not a constant


def test_box_methods():
    gt = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    (center,) = CenterBox().boxes(40, 20, gt)
    assert (center[2] - center[0]) * (center[3] - center[1]) == pytest.approx(400)
    np.testing.assert_array_equal(MaxBox().boxes(40, 20, gt)[0], [0, 0, 40, 20])
    assert len(GroundTruthBoxes().boxes(40, 20, gt)) == 2


def test_gradient(blackbox, tiny_images):
    method = Gradient(blackbox)
    check_maps(method.maps(*tiny_images), method.normalised)


def test_gradcam(blackbox, tiny_images):
    method = GradCam(blackbox)
    maps = method.maps(*tiny_images)
    check_maps(maps, method.normalised)
    assert maps.min() >= 0 and maps.max() <= 1  # the package already rescales to [0, 1]


def test_iterative_mask_moves_away_from_its_start(blackbox, tiny_images):
    method = IterativeMask(blackbox, iterations=2)
    maps = method.maps(*tiny_images)
    check_maps(maps, method.normalised)
    assert (maps - 0.5).abs().max() > 0.01  # start: 0.5 everywhere; Adam at lr 0.1 moves logits ~0.1 a step
    assert "2 iterations" in method.label


def test_masking_model(untrained_masker, tiny_images):
    method = MaskingModel(untrained_masker, "Masking model (untrained)")
    check_maps(method.maps(*tiny_images), method.normalised)


def test_gated_masking_model_empties_masks_under_the_gate(untrained_masker, blackbox, tiny_images):
    images, classes = tiny_images
    plain = MaskingModel(untrained_masker).maps(images, classes)
    torch.testing.assert_close(GatedMaskingModel(untrained_masker, blackbox, 0.0).maps(images, classes), plain)
    probability = torch.softmax(blackbox(images), 1).gather(1, classes[:, None])[:, 0]
    between = float(probability.min() + probability.max()) / 2  # one image above the gate, one below
    gated = GatedMaskingModel(untrained_masker, blackbox, between).maps(images, classes)
    above = int(probability.argmax())
    torch.testing.assert_close(gated[above], plain[above])
    assert gated[1 - above].max() == 0
    assert "gated at p < " in GatedMaskingModel(untrained_masker, blackbox, 0.003).label


def test_registry(blackbox):
    context = MethodContext(blackbox, torch.device("cpu"), iterations=7)
    assert create_method("iterative", context).iterations == 7
    with pytest.raises(ValueError, match="needs a masker"):
        create_method("model", context)
    with pytest.raises(ValueError, match="unknown method"):
        create_method("nope", context)


def test_normalise_per_image():
    maps = torch.tensor([[[[2.0, 4.0], [6.0, 10.0]]], [[[3.0, 3.0], [3.0, 3.0]]]])
    normalised = normalise_per_image(maps)
    # (x - min) / span on exact values: one rounding each, within assert_close's float32 default (rtol 1.3e-6)
    torch.testing.assert_close(normalised[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    torch.testing.assert_close(normalised[1], torch.zeros(1, 2, 2))
