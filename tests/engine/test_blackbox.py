import numpy as np
import pytest
import torch
from skimage import data as samples

from engine.classes import imagenet_classes, resolve_class
from engine.errors import BlackBoxUnavailableError, UnknownClassError
from engine.models.blackbox import create_blackbox, list_blackboxes, rename_lite_key


def _predict(blackbox, image: np.ndarray) -> list[str]:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        top = blackbox(x).softmax(1)[0].topk(5).indices.tolist()
    return [blackbox.classes[i].display_name for i in top]


def test_lite0_recognises_the_cat(blackbox):
    top5 = _predict(blackbox, samples.chelsea())
    assert {"tabby", "tiger cat", "Egyptian cat"} <= set(top5)


def test_lite0_recognises_the_espresso(blackbox):
    assert _predict(blackbox, samples.coffee())[0] == "espresso"


def test_gradient_flows_through_the_frozen_black_box(blackbox):
    x = torch.rand(1, 3, 224, 224, requires_grad=True)
    blackbox(x)[0, 281].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in blackbox.parameters())
    blackbox.train()
    assert not blackbox.net.training


def test_lukemelas_keys_map_to_timm(blackbox):
    depths = tuple(len(stage) for stage in blackbox.net.blocks)
    assert depths == (1, 2, 2, 3, 3, 4, 1)  # Lite0
    assert rename_lite_key("_blocks.0._depthwise_conv.weight", depths) == "blocks.0.0.conv_dw.weight"
    assert rename_lite_key("_blocks.7._expand_conv.weight", depths) == "blocks.3.2.conv_pw.weight"
    assert rename_lite_key("_blocks.15._bn2.running_var", depths) == "blocks.6.0.bn3.running_var"
    assert rename_lite_key("_fc.bias", depths) == "classifier.bias"


def test_registry_and_classes():
    known = {"efficientnet_lite0", "efficientnet_lite2", "resnet50", "googlenet", "alexnet", "resnet18"}
    assert known <= set(list_blackboxes())
    classes = imagenet_classes()
    assert len(classes) == 1000 and classes[281].display_name == "tabby"
    assert resolve_class("tabby", classes) == 281
    assert resolve_class("967", classes) == 967
    with pytest.raises(UnknownClassError):
        resolve_class(1000, classes)
    with pytest.raises(UnknownClassError):
        resolve_class("no such thing", classes)


def test_missing_torchvision_weights_give_instructions(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BlackBoxUnavailableError, match="never downloads"):
        create_blackbox("resnet18")


def test_unknown_and_user_black_boxes():
    with pytest.raises(BlackBoxUnavailableError, match="unknown black box"):
        create_blackbox("vgg99")
    user = create_blackbox("tests.engine.user_blackbox:tiny")
    assert len(user.classes) == 10 and user(torch.rand(2, 3, 32, 32)).shape == (2, 10)
