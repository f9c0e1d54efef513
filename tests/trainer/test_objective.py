import math

import pytest
import torch

from trainer.objective import (
    ObjectiveConfig,
    area_term,
    destroy_term,
    embedding_term,
    objective,
    preserve_term,
    preset,
    tv_term,
)

# a 2 x 2 mask [[0, 1], [1, 1]]: one horizontal and one vertical step of height 1
MASK = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])


def test_tv_by_hand():
    # float32 results of a few operations (a few u = 6e-8 each): within pytest.approx's rel 1e-6 here and below
    assert tv_term(MASK, "mean").item() == pytest.approx(0.5 + 0.5)  # dx (1, 0) -> 0.5; dy (1, 0) -> 0.5
    assert tv_term(MASK, "sum").item() == pytest.approx(2.0)
    # official: (sum of squares 2 + 0.3 * border squares (1 + 2 + 1 + 2)) / 2
    assert tv_term(MASK, "official", border=0.3).item() == pytest.approx((2 + 0.3 * 6) / 2)


def test_area_by_hand():
    real, fake = torch.tensor([True]), torch.tensor([False])
    assert area_term(MASK, real, "mean").item() == pytest.approx(0.75)
    expected_power = (0.0005**0.3 + 3 * 1.0005**0.3) / 4
    assert area_term(MASK, real, "power", power=0.3).item() == pytest.approx(expected_power)
    assert area_term(MASK, real, "target", target=0.3).item() == pytest.approx(0.45)
    assert area_term(MASK, fake, "target", target=0.3).item() == pytest.approx(0.75)  # a fake class wants nothing


def test_preserve_and_destroy_by_hand():
    two = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4)
    assert preserve_term(two, torch.tensor([1]), "log_prob").item() == pytest.approx(-math.log(0.75))
    assert destroy_term(two, torch.tensor([1]), "prob_power", power=0.3).item() == pytest.approx(0.75**0.3)
    three = torch.tensor([[2.0, 0.5, 1.0]])
    assert preserve_term(three, torch.tensor([1]), "hinge_logit", margin=1.0).item() == pytest.approx(2.0 - 0.5 + 1)
    assert destroy_term(three, torch.tensor([0]), "hinge_logit", margin=1.0).item() == pytest.approx(2.0 - 1.0 + 1)
    assert destroy_term(three, torch.tensor([1]), "hinge_logit", margin=1.0).item() == 0.0


def test_embedding_term_by_hand():
    logits = torch.full((2, 1, 2, 2), -5.0)
    logits[0, 0, 1, 1] = 0.0  # max logit 0 for the real image
    logits[1, 0, 0, 0] = math.log(3.0)  # max logit ln 3 for the fake one
    values = embedding_term(logits, torch.tensor([True, False]))
    assert values[0].item() == pytest.approx(math.log(2.0))  # -log sigmoid(0)
    assert values[1].item() == pytest.approx(math.log(4.0))  # -log(1 - sigmoid(ln 3)) = log(1 + 3)


def _inputs(batch: int, is_real: list[bool]):
    torch.manual_seed(0)
    mask = torch.rand(batch, 1, 8, 8, requires_grad=True)
    real = torch.tensor(is_real)
    logits = torch.randn(int(real.sum()) * 2, 5)
    return mask, real, logits


def test_fake_images_contribute_only_the_area_term():
    config = preset("paper", embedding_weight=0.0)
    mask, real, logits = _inputs(3, [False, False, False])
    terms = objective(
        config, mask, mask, torch.zeros(3, 1, 2, 2), logits[:0], logits[:0], torch.tensor([0, 1, 2]), real
    )
    assert terms["tv"].item() == terms["preserve"].item() == terms["destroy"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(terms["area"].item())
    assert terms["area"].item() == pytest.approx(1e-3 * mask.mean().item())


def test_a_fake_image_gets_only_the_area_gradient():
    config = ObjectiveConfig(embedding_weight=0.0)
    mask, real, logits = _inputs(2, [True, False])
    # the black box logits depend on the real image's mask only (as in training: fakes are not classified)
    preserved = logits[:1] + mask[0].mean()
    destroyed = logits[1:] - mask[0].mean()
    terms = objective(config, mask, mask, torch.zeros(2, 1, 2, 2), preserved, destroyed, torch.tensor([1, 2]), real)
    terms["loss"].backward()
    uniform = config.area_weight / (2 * 64)  # d/dM of area_weight * mean over batch of mean(M)
    assert torch.allclose(mask.grad[1], torch.full_like(mask.grad[1], uniform))
    assert not torch.allclose(mask.grad[0], torch.full_like(mask.grad[0], uniform))


def test_presets_hold_the_published_values():
    paper = preset("paper")
    assert (paper.tv_weight, paper.area_weight, paper.destroy_weight, paper.destroy_power) == (10, 1e-3, 5, 0.3)
    assert (paper.area_form, paper.preserve_form, paper.destroy_form) == ("mean", "log_prob", "prob_power")
    official = preset("official")
    assert (official.area_form, official.area_power, official.preserve_form) == ("power", 0.3, "hinge_logit")
    assert preset("default", area_weight=3.0).area_weight == 3.0
    with pytest.raises(ValueError, match="area_form"):
        ObjectiveConfig(area_form="cube")
    with pytest.raises(ValueError, match="unknown objective preset"):
        preset("nonsense")
