"""The masking model of Dabkowski & Gal (NIPS 2017), section 4.

    image (B, 3, 224, 224) in [0, 1]
      -> frozen encoder: features at strides 2, 4, 8, 16, 32
      -> feature filter at stride 32: Y_ij = X_ij * sigmoid(scale * (X_ij . C_s + b_s) + offset)
      -> 3 upsampler blocks (transposed conv x2, concat encoder features, 3 bottleneck blocks): strides 16, 8, 4
      -> 1x1 head to C0, C1; M = |C0| / (|C0| + |C1| + eps) at stride 4 (56 x 56), bilinear x4 to the input size

Only the feature filter, the upsamplers and the head are trained and saved; the encoder is rebuilt from its
pretrained weights (for the default model it is the black box itself).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.encoders import Encoder, create_encoder


@dataclass
class MaskerConfig:
    encoder: str = "efficientnet_lite0"  # a name from engine.models.encoders
    num_classes: int = 1000
    input_size: int = 224
    upsampler_channels: tuple[int, ...] = (128, 64, 32)  # paper (ResNet-50): 768, 384, 192
    bottleneck_reduction: int = 4
    blocks_per_upsampler: int = 3
    # "classifier": C_s starts as the black box's classifier row for class s (X_ij . C_s is then the class
    # activation map); "random": the paper's random initialisation.
    embedding_init: str = "classifier"
    embedding_scale: float = 0.2
    embedding_offset: float = -2.0
    eps: float = 1e-6

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> MaskerConfig:
        values = dict(values)
        values["upsampler_channels"] = tuple(values.get("upsampler_channels", cls.upsampler_channels))
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown masker config fields: {sorted(unknown)}")
        return cls(**values)


class Bottleneck(nn.Module):
    """Residual bottleneck: 1x1 reduce, 3x3, 1x1 expand (BN + ReLU), projection shortcut when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int) -> None:
        super().__init__()
        mid = max(out_channels // reduction, 8)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Upsampler(nn.Module):
    """Transposed conv x2, concatenate the encoder's features of that scale, bottleneck blocks."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, blocks: int, reduction: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        layers = [Bottleneck(out_channels + skip_channels, out_channels, reduction)]
        layers += [Bottleneck(out_channels, out_channels, reduction) for _ in range(blocks - 1)]
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, C_out, 2H, 2W)
        return self.blocks(torch.cat([x, skip], dim=1))


class FeatureFilter(nn.Module):
    """Y_ij = X_ij * sigmoid(scale * (X_ij . C_s + b_s) + offset): keeps the locations that belong to class s."""

    def __init__(self, channels: int, num_classes: int, scale: float, offset: float) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(num_classes, channels) / channels**0.5)
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.scale = scale
        self.offset = offset

    def logits(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        embedding = self.embedding[classes]  # (B, C)
        dot = torch.einsum("bchw,bc->bhw", features, embedding) + self.bias[classes][:, None, None]
        return (self.scale * dot + self.offset).unsqueeze(1)  # (B, 1, H, W)

    def forward(self, features: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(features, classes)
        return features * torch.sigmoid(logits), logits


class Masker(nn.Module):
    """Images in [0, 1] (B, 3, H, W) and class indices (B,) -> masks (B, 1, H, W) in [0, 1]."""

    def __init__(self, config: MaskerConfig, encoder: Encoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else create_encoder(config.encoder)
        self.encoder.requires_grad_(False)
        channels = self.encoder.channels  # widths at strides 2, 4, 8, 16, 32
        self.filter = FeatureFilter(channels[4], config.num_classes, config.embedding_scale, config.embedding_offset)
        widths = list(config.upsampler_channels)
        if len(widths) != 3:
            raise ValueError("upsampler_channels needs 3 widths (strides 16, 8 and 4)")
        self.upsamplers = nn.ModuleList(
            [
                Upsampler(
                    channels[4], channels[3], widths[0], config.blocks_per_upsampler, config.bottleneck_reduction
                ),
                Upsampler(widths[0], channels[2], widths[1], config.blocks_per_upsampler, config.bottleneck_reduction),
                Upsampler(widths[1], channels[1], widths[2], config.blocks_per_upsampler, config.bottleneck_reduction),
            ]
        )
        self.head = nn.Conv2d(widths[2], 2, kernel_size=1)
        if config.embedding_init == "classifier":
            self._init_embedding_from_classifier()
        elif config.embedding_init != "random":
            raise ValueError(f"embedding_init must be 'classifier' or 'random', not {config.embedding_init!r}")

    def _init_embedding_from_classifier(self) -> None:
        weight, bias = self.encoder.classifier()
        if weight is None or weight.shape != self.filter.embedding.shape:
            raise ValueError(
                f"encoder {self.config.encoder!r} has no classifier matching the stride-32 features and "
                f"{self.config.num_classes} classes; use embedding_init='random'"
            )
        with torch.no_grad():
            self.filter.embedding.copy_(weight)
            self.filter.bias.copy_(bias if bias is not None else torch.zeros_like(self.filter.bias))

    def train(self, mode: bool = True) -> Masker:
        super().train(mode)
        self.encoder.eval()  # frozen: batch-norm statistics never move
        return self

    def forward_aux(self, images: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
        """All outputs: `mask` (input size), `mask_low` (1/4), `presence_logits` (filter logits at stride 32)."""
        height, width = images.shape[-2:]
        size = self.config.input_size
        resized = images if (height, width) == (size, size) else _resize(images, size, size)
        with torch.no_grad():
            features = self.encoder(resized)
        x, presence_logits = self.filter(features[4], classes)  # (B, C5, 7, 7)
        for upsampler, skip in zip(self.upsamplers, (features[3], features[2], features[1])):
            x = upsampler(x, skip)
        channels = self.head(x).float()  # the ratio stays in FP32, also in FP16 engines
        c0, c1 = channels[:, 0:1].abs(), channels[:, 1:2].abs()
        mask_low = c0 / (c0 + c1 + self.config.eps)  # (B, 1, H/4, W/4)
        mask = _resize(mask_low, height, width)
        return {"mask": mask, "mask_low": mask_low, "presence_logits": presence_logits}

    def forward(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.forward_aux(images, classes)["mask"]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen encoder: what a model file stores."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        result = self.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("encoder.")]
        if missing or result.unexpected_keys:
            raise KeyError(
                f"weights do not fit this masker: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
            )


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
