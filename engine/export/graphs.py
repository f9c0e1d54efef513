"""The two graphs every backend runs, as plain nn.Modules (what gets exported to ONNX and TensorRT).

- `SaliencyGraph`: image (B, 3, S, S) float32 in [0, 1] + target (B,) int64 -> mask_low (B, 1, S/4, S/4) float32
  + logits (B, K) float32. A negative target means "auto": the black box's top-1 on that image, decided inside
  the graph, so one call per frame serves both the "auto" class and the top-5 list.
- the classifier graph: the black box itself, image (B, 3, S, S) -> logits (B, K), for the live evidence check.
- `ModelGraphs`: both of a model, with what a backend needs to know about them (`model_graphs` builds it).
- their variants for export and the GPU: `HalfGraph` (FP16 inside, FP32 at the edges) and `with_static_padding`.

The mask leaves the graph at 1/4 resolution: the pipeline upsamples it once, straight to the frame's size.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.modelfiles.modelfile import tensors_sha256
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker

SALIENCY_INPUTS = ("image", "target")
SALIENCY_OUTPUTS = ("mask_low", "logits")
CLASSIFIER_INPUTS = ("image",)
CLASSIFIER_OUTPUTS = ("logits",)


@dataclass
class ModelGraphs:
    """What a backend needs to run one masking model (built by `model_graphs`)."""

    saliency: nn.Module  # image (B, 3, S, S), target (B,) -> mask_low (B, 1, S/4, S/4), logits (B, K)
    classifier: nn.Module  # image (B, 3, S, S) -> logits (B, K)
    input_size: int
    num_classes: int
    key: str  # sha256 over the masker config, its weights and the black box's weights
    name: str  # for people: "lite0-default (efficientnet_lite0)"

    @property
    def mask_size(self) -> int:
        return self.input_size // 4


class MaskRatio(nn.Module):
    """M = |C0| / (|C0| + |C1| + eps), always in FP32 (an FP16 division here loses small masks)."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, channels: torch.Tensor) -> torch.Tensor:
        channels = channels.float()
        c0, c1 = channels[:, 0:1].abs(), channels[:, 1:2].abs()
        return c0 / (c0 + c1 + self.eps)


class SaliencyGraph(nn.Module):
    """The masking model's path from image to low-resolution mask, plus the black box's logits on the image."""

    def __init__(self, masker: Masker, blackbox: BlackBox) -> None:
        super().__init__()
        self.masker = masker
        self.blackbox = blackbox
        self.ratio = MaskRatio(masker.config.eps)
        # When the encoder is the black box's own timm network, its stride-32 features are the input of the
        # classifier head: the logits then cost one pooling and one matrix product instead of a second network.
        net = getattr(masker.encoder, "net", None)
        self.shares_blackbox = net is blackbox.net and hasattr(net, "forward_head")

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        masker = self.masker
        features = masker.encoder(image)  # 5 maps, strides 2..32
        if self.shares_blackbox:
            forward_head = getattr(self.blackbox.net, "forward_head")  # noqa: B009 (timm's, untyped)
            logits = forward_head(features[4])
        else:
            logits = self.blackbox(image)
        target = torch.where(target < 0, logits.argmax(dim=1), target)  # (B,)
        x, _ = masker.filter(features[4], target)
        for upsampler, skip in zip(masker.upsamplers, (features[3], features[2], features[1])):
            x = upsampler(x, skip)
        mask_low = self.ratio(masker.head(x))  # (B, 1, S/4, S/4)
        return mask_low, logits.float()


class ClassifierGraph(nn.Module):
    """The black box alone (image in [0, 1] -> logits), for the evidence check on preserved / destroyed frames."""

    def __init__(self, blackbox: BlackBox) -> None:
        super().__init__()
        self.blackbox = blackbox

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.blackbox(image).float()


def model_graphs(masker: Masker, blackbox: BlackBox, card: dict[str, Any] | None = None, name: str = "") -> ModelGraphs:
    """Both graphs of a loaded model (eval mode; the backends run them without autograd)."""
    masker = masker.eval()  # no requires_grad_(False): the caller (a trainer, a test) may still train it
    digest = hashlib.sha256()
    digest.update(json.dumps(masker.config.to_dict(), sort_keys=True).encode())
    digest.update(tensors_sha256(masker.trainable_state_dict()).encode())
    digest.update(f"{blackbox.name}:{blackbox.weights_sha256()}".encode())
    return ModelGraphs(
        saliency=SaliencyGraph(masker, blackbox).eval(),
        classifier=ClassifierGraph(blackbox).eval(),
        input_size=masker.config.input_size,
        num_classes=len(blackbox.classes),
        key=digest.hexdigest(),
        name=f"{name or 'masker'} ({blackbox.name})",
    )


class HalfGraph(nn.Module):
    """FP32 images in, the module in FP16 and channels_last, FP32 outputs (the mask ratio is FP32 inside)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.half().to(memory_format=torch.channels_last)

    def forward(
        self, image: torch.Tensor, target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...] | torch.Tensor:
        image = image.half().contiguous(memory_format=torch.channels_last)
        if target is None:
            return self.module(image)
        return self.module(image, target)


class StaticSamePadConv(nn.Module):
    """A TensorFlow-style 'same' convolution with its padding fixed for one input size.

    timm's Conv2dSame computes its padding from the input's shape at every call; exported, that is a chain of
    Shape / Cast / Div / Ceil nodes per convolution and a Pad that ONNX Runtime cannot fuse into the Conv. With the
    input size fixed (S x S), the padding is a constant: ONNX Runtime then fuses it, TensorRT sees a plain Conv.
    """

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv = conv
        self.pads = pads  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        padded = torch.nn.functional.pad(x, self.pads)
        return torch.nn.functional.conv2d(padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def with_static_padding(module: nn.Module, example: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of `module` whose dynamic 'same' convolutions have the padding of the shapes in `example`."""
    module = copy.deepcopy(module)
    dynamic = [(name, m) for name, m in module.named_modules() if type(m).__name__ == "Conv2dSame"]
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
        for name, m in dynamic
    ]
    try:
        with torch.no_grad():
            module(**example)
    finally:
        for hook in hooks:
            hook.remove()
    for name, conv in dynamic:
        if name not in sizes:
            continue  # not on the path of this graph
        height, width = sizes[name]
        top, bottom = _same_pads(height, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        left, right = _same_pads(width, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, StaticSamePadConv(conv, (left, right, top, bottom)))
    return module
