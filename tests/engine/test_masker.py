import pytest
import torch

from engine.models.masker import Masker, MaskerConfig


def test_shapes_and_range(untrained_masker):
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        out = untrained_masker.forward_aux(images, torch.tensor([281, 967]))
    assert out["mask"].shape == (2, 1, 224, 224)
    assert out["mask_low"].shape == (2, 1, 56, 56)
    assert 0 <= out["mask"].min() and out["mask"].max() <= 1


def test_other_input_sizes_come_back_at_their_size(untrained_masker):
    with torch.no_grad():
        mask = untrained_masker(torch.rand(1, 3, 120, 200), torch.tensor([1]))
    assert mask.shape == (1, 1, 120, 200)


def test_gradient_reaches_the_head_and_not_the_encoder(untrained_masker):
    untrained_masker.zero_grad()
    mask = untrained_masker(torch.rand(2, 3, 224, 224), torch.tensor([3, 4]))
    mask.mean().backward()
    assert untrained_masker.head.weight.grad is not None and untrained_masker.head.weight.grad.abs().sum() > 0
    assert untrained_masker.filter.embedding.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in untrained_masker.encoder.parameters())
    untrained_masker.zero_grad()


def test_class_changes_the_mask(untrained_masker):
    from skimage import data as samples

    cat = torch.from_numpy(samples.chelsea()).permute(2, 0, 1)[None].float() / 255
    images, classes = cat.repeat(2, 1, 1, 1), torch.tensor([281, 967])  # tabby vs espresso
    with torch.no_grad():
        out = untrained_masker.forward_aux(images, classes)
    gate = torch.sigmoid(out["presence_logits"])
    assert gate[0].mean() > 2 * gate[1].mean()  # the classifier-initialised filter keeps the cat for 'tabby'
    assert not torch.equal(out["mask"][0], out["mask"][1])


def test_encoder_stays_in_eval_mode(untrained_masker):
    untrained_masker.train()
    assert not untrained_masker.encoder.training and untrained_masker.head.training
    untrained_masker.eval()


def test_classifier_init_copies_the_black_box_head(untrained_masker, blackbox):
    assert torch.equal(untrained_masker.filter.embedding, blackbox.net.classifier.weight)


def test_config_round_trip_and_validation():
    config = MaskerConfig(upsampler_channels=(64, 32, 16))
    assert MaskerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        MaskerConfig.from_dict({"nonsense": 1})
    with pytest.raises(ValueError, match="embedding_init"):
        Masker(MaskerConfig(embedding_init="zeros"))
