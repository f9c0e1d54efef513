"""Model files that hold a real card and no real weights, written without torch: what the command lines' argument
checks read (only the card). Loading one for real fails (its weights do not match the card)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from engine.modelfiles.card import read_card
from engine.paths import DEFAULT_MODEL


def card_only_model(path: Path, **changes: Any) -> Path:
    """A model file at `path` with the bundled model's card, `changes` replacing top-level sections."""
    card = {**read_card(DEFAULT_MODEL), **changes}
    save_file({"placeholder": np.zeros(1, np.float32)}, str(path), metadata={"card": json.dumps(card)})
    return path
