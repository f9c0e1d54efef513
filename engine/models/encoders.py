"""Frozen pretrained encoders for the masking model: features at 5 scales (strides 2, 4, 8, 16, 32).

Registry: name -> factory(blackbox or None) -> Encoder. The default, `efficientnet_lite0`, is the Lite0 black box's
own feature extractor (shares its weights, so a model file stores none of them), `efficientnet_lite2` likewise for
the Lite2 black box; `resnet50` and `resnet18` are torchvision's, the paper's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.models.blackbox import BlackBox, create_blackbox

_ENCODERS: dict[str, Callable[[], Encoder]] = {}


class Encoder(nn.Module):
    """Images in [0, 1] -> 5 feature maps; owns its normalisation. Always frozen and in eval mode."""

    channels: tuple[int, int, int, int, int]
    blackbox_name: str
    net: Any  # the timm / torchvision network, reached by its own (untyped) attribute names
    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    std: torch.Tensor

    def classifier(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(weight (classes, C5), bias) of the classifier that reads the stride-32 features, if there is one."""
        return None, None


class EfficientNetLiteEncoder(Encoder):
    """A timm tf_efficientnet_lite*: the last stage outputs at strides 2, 4, 8, 16 and the head conv @/32.

    The widths are read off the network (timm's feature_info and num_features): Lite0 16, 24, 40, 112, 1280;
    Lite2 16, 24, 48, 120, 1280. The stride-32 map is the head conv's after its batch norm and ReLU6: the input of
    the classifier's pooling, so the class embeddings can start as the classifier rows."""

    def __init__(self, blackbox: BlackBox) -> None:
        super().__init__()
        self.blackbox_name = blackbox.name
        self.net = blackbox.net
        stages = [info for info in self.net.feature_info if info["reduction"] in (2, 4, 8, 16)]
        self.stage_indices = tuple(int(info["module"].split(".")[1]) for info in stages)
        width2, width4, width8, width16 = (int(info["num_chs"]) for info in stages)
        self.channels = (width2, width4, width8, width16, int(self.net.num_features))
        self.register_buffer("mean", blackbox.mean.clone(), persistent=False)
        self.register_buffer("std", blackbox.std.clone(), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.mean) / self.std
        x = self.net.bn1(self.net.conv_stem(x))
        features = []
        for index, stage in enumerate(self.net.blocks):
            x = stage(x)
            if index in self.stage_indices:
                features.append(x)
        features.append(self.net.bn2(self.net.conv_head(x)))
        return features

    def classifier(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.net.classifier.weight.detach(), self.net.classifier.bias.detach()


class ResNetEncoder(Encoder):
    """torchvision ResNet: relu after the stem @/2, layer1..layer4 @/4../32."""

    def __init__(self, blackbox: BlackBox) -> None:
        super().__init__()
        self.blackbox_name = blackbox.name
        self.net = blackbox.net
        widths = [self.net.layer1[-1], self.net.layer2[-1], self.net.layer3[-1], self.net.layer4[-1]]
        out = [b.conv3.out_channels if hasattr(b, "conv3") else b.conv2.out_channels for b in widths]
        self.channels = (64, out[0], out[1], out[2], out[3])
        self.register_buffer("mean", blackbox.mean.clone(), persistent=False)
        self.register_buffer("std", blackbox.std.clone(), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.mean) / self.std
        stem = self.net.relu(self.net.bn1(self.net.conv1(x)))
        layer1 = self.net.layer1(self.net.maxpool(stem))
        layer2 = self.net.layer2(layer1)
        layer3 = self.net.layer3(layer2)
        layer4 = self.net.layer4(layer3)
        return [stem, layer1, layer2, layer3, layer4]

    def classifier(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.net.fc.weight.detach(), self.net.fc.bias.detach()


def register_encoder(name: str) -> Callable[[Callable[[], Encoder]], Callable[[], Encoder]]:
    def decorate(factory: Callable[[], Encoder]) -> Callable[[], Encoder]:
        _ENCODERS[name] = factory
        return factory

    return decorate


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def create_encoder(name: str, blackbox: BlackBox | None = None) -> Encoder:
    """The encoder `name`; pass the black box when it is the same network, so that weights are shared."""
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(list_encoders())}")
    if blackbox is not None and blackbox.name == name:
        return _ENCODER_TYPES[name](blackbox)
    return _ENCODERS[name]()


_ENCODER_TYPES: dict[str, Callable[[BlackBox], Encoder]] = {
    "efficientnet_lite0": EfficientNetLiteEncoder,
    "efficientnet_lite2": EfficientNetLiteEncoder,
    "resnet50": ResNetEncoder,
    "resnet18": ResNetEncoder,
}


def _standalone(name: str, kind: Callable[[BlackBox], Encoder]) -> Callable[[], Encoder]:
    """A factory of encoder `name` on its own copy of the network (not shared with a black box)."""
    return lambda: kind(create_blackbox(name))


for _name, _type in _ENCODER_TYPES.items():
    register_encoder(_name)(_standalone(_name, _type))
