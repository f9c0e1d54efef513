"""The public Python API of the engine (documented in README).

    import engine
    model = engine.load_masker()                 # the bundled default model (or a path)
    masks = model(images, classes)               # images (N, 3, H, W) in [0, 1], classes (N,) -> (N, 1, H, W)
    logits = model.blackbox(images)              # the black box it explains
    engine.list_blackboxes(); engine.load_blackbox("efficientnet_lite0")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelFileError
from engine.modelfile import load_model
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.blackbox import list_blackboxes as _list_blackboxes
from engine.models.masker import Masker
from engine.paths import DEFAULT_MODEL, default_model_path


class SaliencyModel(nn.Module):
    """A masking model together with the black box it explains."""

    def __init__(self, masker: Masker, blackbox: BlackBox, card: dict[str, Any]) -> None:
        super().__init__()
        self.masker = masker
        self.blackbox = blackbox
        self.card = card

    @property
    def classes(self) -> tuple:
        return self.blackbox.classes

    def forward(self, images: torch.Tensor, classes: torch.Tensor | list[int]) -> torch.Tensor:
        classes = torch.as_tensor(classes, dtype=torch.long, device=images.device).reshape(-1)
        if classes.numel() != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {classes.numel()} classes")
        if classes.min() < 0 or classes.max() >= len(self.blackbox.classes):
            raise ValueError(f"class indices must lie in 0..{len(self.blackbox.classes) - 1}")
        return self.masker(images, classes)


def load_masker(path: str | Path | None = None, device: str | torch.device = "cpu") -> SaliencyModel:
    """A model file (None: the bundled default) as a SaliencyModel in eval mode on `device`."""
    path = Path(path) if path is not None else default_model_path()
    if not path.exists() and path == DEFAULT_MODEL:
        raise ModelFileError(
            f"the bundled default model is missing ({path}); train one with `python -m trainer train` "
            f"or pass a model file"
        )
    blackbox_name = _card_blackbox(path)
    blackbox = create_blackbox(blackbox_name)
    masker, card = load_model(path, blackbox)
    return SaliencyModel(masker, blackbox, card).to(device).eval()


def list_blackboxes() -> list[str]:
    return _list_blackboxes()


def load_blackbox(name: str = "efficientnet_lite0") -> BlackBox:
    return create_blackbox(name)


def _card_blackbox(path: Path) -> str:
    from engine.modelfile import read_card

    return read_card(path)["blackbox"]["name"]
