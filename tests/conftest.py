"""Shared fixtures: the real Lite0 black box (built once), an untrained masker on it, paths to the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("SALIENCY_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA.exists():
        pytest.fail(f"the shared data folder {DATA} is missing; set SALIENCY_DATA")
    return DATA


@pytest.fixture(scope="session")
def blackbox():
    from engine.models.blackbox import create_blackbox

    return create_blackbox("efficientnet_lite0")


@pytest.fixture(scope="session")
def untrained_masker(blackbox):
    """A masker with the Lite0 encoder and the classifier-initialised embedding; decoder weights random (seed 0)."""
    import torch

    from engine.models.encoders import create_encoder
    from engine.models.masker import Masker, MaskerConfig

    torch.manual_seed(0)
    return Masker(MaskerConfig(), create_encoder("efficientnet_lite0", blackbox)).eval()


@pytest.fixture(scope="session")
def untrained_model_file(tmp_path_factory, untrained_masker, blackbox) -> Path:
    """A real model file (untrained decoder) for tests of everything that loads models."""
    from engine.modelfiles.modelfile import save_model

    path = tmp_path_factory.mktemp("models") / "untrained.safetensors"
    return save_model(path, untrained_masker, blackbox, training={"preset": "untrained (tests)"})
