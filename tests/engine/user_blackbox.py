"""A user-defined black box for the `module:factory` registry entry."""

from torch import nn


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


tiny.num_classes = 10  # type: ignore[attr-defined]
tiny.input_size = 64  # type: ignore[attr-defined]
