"""Loading a model file with torch: the masking model together with the black box it explains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelFileError
from engine.modelfiles.modelfile import load_model, read_card
from engine.models.blackbox import BlackBox, create_blackbox
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


def check_model_path(path: str | Path | None) -> Path:
    """The model file to use (None: the bundled default), or ModelFileError saying what to do."""
    path = Path(path) if path is not None else default_model_path()
    if not path.exists() and path == DEFAULT_MODEL:
        raise ModelFileError(
            f"the bundled default model is missing ({path}); train one with `python -m trainer train` "
            f"or pass a model file"
        )
    return path


def load_masker(path: str | Path | None = None, device: str | torch.device = "cpu") -> SaliencyModel:
    """A model file (None: the bundled default) as a SaliencyModel in eval mode on `device`."""
    path = check_model_path(path)
    blackbox = create_blackbox(read_card(path)["blackbox"]["name"])
    masker, card = load_model(path, blackbox)
    return SaliencyModel(masker, blackbox, card).to(device).eval()
