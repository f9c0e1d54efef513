"""Resumable training state, written atomically (temp file + rename: a kill never leaves half a checkpoint).

A checkpoint holds the masker's trainable weights and buffers, the optimizer state, the step, the images seen,
the training time so far, the best validation so far and the validation history. The randomness of step s is a
pure function of (seed, s, rank) (see train.step_generators), so the step count alone puts every random stream back
where it was. Checkpoints are loaded with `weights_only=True`: tensors and plain containers only, no code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.errors import SaliencyError
from engine.paths import replace_atomically

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(SaliencyError):
    """A checkpoint is missing or unreadable, or belongs to another run."""


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    path = Path(run_dir) / CHECKPOINT_NAME
    replace_atomically(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"nothing to resume: {path} does not exist (start a new run without --resume)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file can fail in many ways inside torch.load
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error
