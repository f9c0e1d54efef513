"""Faithfulness metrics and RISE on a synthetic black box whose answer depends only on the pixels of one object, so
the best and the worst maps are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.evaluation import faithfulness
from trainer.evaluation.baselines import Rise, normalise_per_image

SIZE = 16
OBJECT = (slice(4, 10), slice(5, 11))  # rows, columns: a 6 x 6 object, 36 of the 256 pixels


class ObjectDetector(nn.Module):
    """Two classes; class 1's logit = 12 * (mean of the red channel over the object's pixels) - offset: it sees the
    object and nothing else (the object at 1, the rest anything: p(1) = sigmoid(12 - offset))."""

    def __init__(self, offset: float = 6.0) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows, columns = OBJECT
        seen = images[:, 0, rows, columns].mean((1, 2))
        logit = 12 * seen - self.offset
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


def object_map() -> torch.Tensor:
    saliency = torch.zeros(SIZE, SIZE)
    saliency[OBJECT] = 1
    return saliency


@pytest.fixture
def scene() -> tuple[torch.Tensor, torch.Tensor, faithfulness.Reference]:
    """Two images: the object at 1 on a random background; the alternative (removed evidence) is black."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, SIZE, SIZE, generator=generator) * 0.5
    images[:, :, OBJECT[0], OBJECT[1]] = 1.0
    classes = torch.tensor([1, 1])
    ref = faithfulness.reference(ObjectDetector(), images, classes, torch.zeros_like(images))
    return images, classes, ref


def aucs(scene, maps: torch.Tensor, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    images, classes, ref = scene
    deletion, insertion = faithfulness.deletion_insertion(ObjectDetector(), images, classes, maps, ref, steps)
    return torch.from_numpy(faithfulness.area_under(deletion)), torch.from_numpy(faithfulness.area_under(insertion))


def test_the_object_map_is_best_and_its_reverse_worst(scene):
    exact = object_map().expand(2, 1, SIZE, SIZE)
    reverse = 1 - exact
    flat = torch.zeros(2, 1, SIZE, SIZE)  # no order at all: the fixed random order
    deletion_exact, insertion_exact = aucs(scene, exact)
    deletion_reverse, insertion_reverse = aucs(scene, reverse)
    deletion_flat, insertion_flat = aucs(scene, flat)
    assert (deletion_exact < deletion_flat).all() and (deletion_flat < deletion_reverse).all()
    assert (insertion_exact > insertion_flat).all() and (insertion_flat > insertion_reverse).all()
    # by hand: the object (36 of 256 pixels) is gone after the first of 8 steps (32 pixels) but for 4 pixels:
    # p = sigmoid(12 * 4/36 - 6) ~ 0.0049, then ~0.0025 (sigmoid(-6)) to the end; the AUC is about
    # (p0 + 0.0049) / 16 + ~0.0025 * 7/8 ~ 0.065
    assert deletion_exact.max() < 0.07
    # the reversed map keeps the object until the last 36 pixels: p stays at sigmoid(6) ~ 0.9975 for 6 of 8 steps
    assert deletion_reverse.min() > 0.8


def test_steps_remove_exactly_the_same_number_of_pixels_for_every_map():
    generator = torch.Generator().manual_seed(1)
    maps = [
        torch.rand(1, SIZE, SIZE, generator=generator),
        object_map()[None],  # binary: ties broken by the fixed random order
        torch.zeros(1, SIZE, SIZE),
    ]
    for saliency in maps:
        masks = faithfulness.step_masks(faithfulness.saliency_order(saliency), 8, SIZE, SIZE)
        counts = masks.flatten(2).sum(2)[0].tolist()
        assert counts == [32 * k for k in range(1, 8)]


def test_ties_are_taken_in_one_order_for_every_method():
    binary = object_map()[None]
    order = faithfulness.saliency_order(binary, seed=3)
    flat_order = faithfulness.saliency_order(torch.zeros(1, SIZE, SIZE), seed=3)
    # the object's 36 pixels come first, in the order the flat map takes them
    object_pixels = set(torch.nonzero(binary.flatten()).flatten().tolist())
    assert set(order[0, :36].tolist()) == object_pixels
    assert order[0, :36].tolist() == [p for p in flat_order[0].tolist() if p in object_pixels]
    assert torch.equal(order, faithfulness.saliency_order(binary, seed=3))


def test_ssr_and_sdr(scene):
    images, classes, ref = scene
    detector = ObjectDetector()
    exact = object_map().expand(2, 1, SIZE, SIZE)
    preserved, destroyed = faithfulness.evidence(detector, images, classes, exact, ref)
    assert faithfulness.ssr_holds(preserved, ref).all() and faithfulness.sdr_holds(destroyed, ref).all()
    part = exact.clone()
    part[..., :8, :] = 0  # the object's last 2 of 6 rows: p 0.12 preserved (< 50%), 0.88 destroyed (> 10%)
    preserved, destroyed = faithfulness.evidence(detector, images, classes, part, ref)
    assert not faithfulness.ssr_holds(preserved, ref).any() and not faithfulness.sdr_holds(destroyed, ref).any()
    empty = torch.zeros_like(exact)  # claims nothing: the preserved view is all fill, the destroyed the image
    preserved, destroyed = faithfulness.evidence(detector, images, classes, empty, ref)
    assert not faithfulness.ssr_holds(preserved, ref).any() and not faithfulness.sdr_holds(destroyed, ref).any()


def test_area_under_by_hand():
    curves = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert faithfulness.area_under(curves).tolist() == [0.5, 0.25]


def test_rise_finds_the_object(scene):
    images, classes, _ = scene
    # offset 9: the object at 1 gives p 0.95, under RISE's grey fill (0.5) p 0.05: it must be kept to be seen
    method = Rise(ObjectDetector(offset=9), count=400, grid=4, seed=0, chunk=100)
    maps = normalise_per_image(method.maps(images, classes))
    assert maps.shape == (2, 1, SIZE, SIZE)
    inside = object_map().bool()
    for saliency in maps[:, 0]:
        assert saliency[inside].mean() > saliency[~inside].mean() + 0.3
    assert "400 masks" in method.label
    masks = method.masks(SIZE, torch.device("cpu"))
    assert masks.shape == (400, 1, SIZE, SIZE) and 0 <= masks.min() and masks.max() <= 1
    assert 0.4 < masks.mean() < 0.6  # cells kept with probability 0.5
