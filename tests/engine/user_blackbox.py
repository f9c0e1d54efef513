"""User-defined black boxes for the `module:factory` registry entry."""

import torch
from torch import nn


def _tiny(seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def tiny() -> nn.Module:
    """Like a user's trained classifier, the same weights at every call (a model card names them by their hash)."""
    return _tiny(0)


def tiny_retrained() -> nn.Module:
    """Another classifier of the same classes (other weights): a masker of `tiny` can be fine-tuned for it."""
    return _tiny(1)


for _factory in (tiny, tiny_retrained):
    _factory.num_classes = 10  # type: ignore[attr-defined]
    _factory.input_size = 64  # type: ignore[attr-defined]
