"""Where the bundled assets and the user's cache live."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS = PROJECT_ROOT / "assets"
DEFAULT_MODEL = ASSETS / "models" / "lite0-default" / "lite0-default.safetensors"
DEMO_CLIP = ASSETS / "demo" / "box.mp4"


def default_model_path() -> Path:
    """The bundled default model, or $SALIENCY_MODEL."""
    return Path(os.environ.get("SALIENCY_MODEL", DEFAULT_MODEL))


def data_root() -> Path:
    """The shared data folder: $SALIENCY_DATA, else ../shared/data beside the project."""
    return Path(os.environ.get("SALIENCY_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    """Built engines (ONNX, TensorRT plans): $SALIENCY_CACHE or the platform's user cache folder."""
    if "SALIENCY_CACHE" in os.environ:
        return Path(os.environ["SALIENCY_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("live-saliency"))
