"""The class selectors of a training step: the paper's fake labels and hard negatives."""

from __future__ import annotations

import torch
from torch import nn

from trainer.training.step import hard_negatives, select_classes, with_hard_negatives


def test_hard_negatives_come_from_the_top_classes_below_one_percent():
    probabilities = torch.tensor(
        [
            [0.90, 0.05, 0.009, 0.008, 0.003, 0.0, 0.0, 0.0],  # top-4: classes 0, 1, 2, 3; below 1%: 2 and 3
            [0.50, 0.49, 0.005, 0.005, 0.0, 0.0, 0.0, 0.0],  # top-2 are both above 1%: none within the pool
        ]
    )
    targets = torch.tensor([0, 0])
    drawn = {int(hard_negatives(probabilities, targets, 4, torch.Generator().manual_seed(s))[0]) for s in range(40)}
    assert drawn == {2, 3}  # uniformly among them: both come up in 40 draws
    assert int(hard_negatives(probabilities, targets, 2, torch.Generator().manual_seed(0))[1]) == -1
    # the target itself is never a hard negative, even when the black box gives it < 1%
    weak_target = torch.tensor([[0.9, 0.05, 0.009, 0.04, 0.001, 0, 0, 0]])
    for seed in range(20):
        assert int(hard_negatives(weak_target, torch.tensor([2]), 5, torch.Generator().manual_seed(seed))) == 4


class Fixed(nn.Module):
    """A black box that answers the same logits for every image."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(images), -1)


def test_only_fake_selectors_are_replaced_and_a_share_of_zero_changes_nothing():
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(8) % 3
    classes, is_real = select_classes(targets, 10, 0.5, generator)
    logits = -10.0 - torch.arange(10.0)
    logits[:3] = 5.0  # classes 0-2 likely; 3..9 unlikely (< 1%), in that order
    images = torch.zeros(8, 3, 4, 4)
    replaced = with_hard_negatives(images, targets, classes, is_real, Fixed(logits), 1.0, 5, generator)
    assert torch.equal(replaced[is_real], classes[is_real])
    assert ((replaced[~is_real] == 3) | (replaced[~is_real] == 4)).all()  # the top-5 below 1%: classes 3 and 4
    unchanged = with_hard_negatives(images, targets, classes, is_real, Fixed(logits), 0.0, 5, generator)
    assert torch.equal(unchanged, classes)
