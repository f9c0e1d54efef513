"""Model files: one `.safetensors` file holding the masking model's trained weights and its JSON card.

The card (safetensors metadata key `card`) says everything needed to rebuild and trust the model: the masker
config, the black box (name + sha256 of its weights), input size and normalisation, the class list, the training
preset and data, evaluation numbers, and the sha256 of the stored weights. Loading refuses pickles, tampered
weights and a black box other than the one the model was trained against. `save` also writes the card beside the
file as `NAME.card.json`, for people to read; loading never trusts that copy. The card is read by
engine/modelfiles/card.py (torch-free, for the command lines' checks).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.errors import BlackBoxMismatchError, ModelFileError
from engine.modelfiles.card import FORMAT, check_path, is_card_file, read_card
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.encoders import create_encoder
from engine.models.masker import Masker, MaskerConfig
from engine.paths import replace_atomically


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def make_card(masker: Masker, blackbox: BlackBox, **extra: Any) -> dict[str, Any]:
    """The card of a masker trained against `blackbox`; `extra` adds training / evaluation sections."""
    card: dict[str, Any] = {
        "format": FORMAT,
        "masker": masker.config.to_dict(),
        "blackbox": {"name": blackbox.name, "weights_sha256": blackbox.weights_sha256()},
        "input": {
            "size": blackbox.input_size,
            "range": "RGB in [0, 1]",
            "blackbox_mean": blackbox.mean.flatten().tolist(),
            "blackbox_std": blackbox.std.flatten().tolist(),
        },
        "classes": {
            "count": len(blackbox.classes),
            "list": "imagenet-1k" if len(blackbox.classes) == 1000 else "generic",
        },
    }
    card.update(extra)
    return card


def save_model(path: str | Path, masker: Masker, blackbox: BlackBox, **extra: Any) -> Path:
    """Write weights + card atomically (temp file + rename): a crash never leaves half a model file."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in masker.trainable_state_dict().items()}
    card = make_card(masker, blackbox, **extra)
    card["weights_sha256"] = tensors_sha256(state)
    replace_atomically(path, lambda tmp: save_file(state, tmp, metadata={"card": json.dumps(card)}))
    replace_atomically(
        path.with_suffix(".card.json"), lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n")
    )
    return path


def load_model(path: str | Path, blackbox: BlackBox | None = None) -> tuple[Masker, dict[str, Any]]:
    """Masker (eval mode, on the CPU) + card. Builds the card's black box unless one is given, and checks it."""
    path = check_path(path)
    if is_card_file(path):
        raise ModelFileError(
            f"{path} is an exported model without its .safetensors file: it runs on the CPU runtime (onnxruntime, "
            "openvino); PyTorch (torch-cpu, torch-cuda, tensorrt, training, evaluation) needs the model file"
        )
    card = read_card(path)
    expected = card["blackbox"]
    if blackbox is None:
        blackbox = create_blackbox(expected["name"])
    check_blackbox(card, blackbox, path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ModelFileError(f"cannot read the weights in {path}: {error}") from error
    if tensors_sha256(state) != card.get("weights_sha256"):
        raise ModelFileError(
            f"{path}: the weights do not match the hash in their card; the file was altered or damaged"
        )
    config = MaskerConfig.from_dict(card["masker"])
    encoder = create_encoder(config.encoder, blackbox)
    masker = Masker(_without_init(config), encoder)
    masker.config = config
    try:
        masker.load_trainable_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise ModelFileError(f"{path}: {error}") from error
    return masker.eval(), card


def check_blackbox(card: dict[str, Any], blackbox: BlackBox, path: Path | str = "model") -> None:
    expected = card["blackbox"]
    if expected["name"] != blackbox.name or expected["weights_sha256"] != blackbox.weights_sha256():
        raise BlackBoxMismatchError(
            f"{path} belongs to the black box {expected['name']!r} (weights sha256 {expected['weights_sha256'][:12]}), "
            f"but it is used with {blackbox.name!r} (weights sha256 {blackbox.weights_sha256()[:12]}). A masking model "
            f"only explains the classifier it was trained against: pick the model trained for {blackbox.name!r}, "
            f"or train one with `python -m trainer train --blackbox {blackbox.name}`."
        )


def _without_init(config: MaskerConfig) -> MaskerConfig:
    """The same architecture without the classifier-based init (the weights are loaded right after)."""
    values = config.to_dict()
    values["embedding_init"] = "random"
    return MaskerConfig.from_dict(values)
