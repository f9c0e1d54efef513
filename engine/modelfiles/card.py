"""A model file's card, read without torch: what the command lines check before they load anything.

A model file is one `.safetensors` file whose metadata key `card` holds the JSON card (see
engine/modelfiles/modelfile.py, which writes and loads the weights). Reading the card touches only the file's header,
so checking a --model or a --class costs milliseconds, not the seconds of importing torch and building a black box.
An exported model folder (engine/modelfiles/exported.py) may hold only its card, `NAME.card.json`, beside the ONNX
graphs: that file is the model then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from engine.classes import generic_classes, imagenet_classes
from engine.contract import ClassInfo
from engine.errors import ModelFileError

FORMAT = "live-saliency-masker/1"
_PICKLE_MAGICS = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+, torch's zip container
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt")
CARD_SUFFIX = ".card.json"


def is_card_file(path: Path) -> bool:
    return path.name.endswith(CARD_SUFFIX)


def check_path(path: str | Path) -> Path:
    """The model file at `path`; refuses missing files and pickles. A folder holding exactly one model is accepted:
    its `.safetensors` file, or, in an exported model folder without one, its `NAME.card.json`."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors")) or sorted(path.glob(f"*{CARD_SUFFIX}"))
        if len(candidates) != 1:
            raise ModelFileError(
                f"{path} is a folder with {len(candidates)} model files (.safetensors, or {CARD_SUFFIX} of an "
                "exported model); name the model file"
            )
        path = candidates[0]
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    if is_card_file(path):
        return path
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as error:
        raise ModelFileError(f"model file {path} cannot be read: {error.strerror}") from error
    # A safetensors file is an 8-byte little-endian header length, then the JSON header: byte 8 is "{". Its first
    # byte is the length's low byte, which can be any value, pickle magics included (1 file in 256 starts with
    # 0x80), so the magic bytes count only when the file is not laid out as safetensors.
    safetensors_layout = head[8:9] == b"{"
    pickled = head.startswith(_PICKLE_MAGICS) and not safetensors_layout
    if path.suffix in _PICKLE_SUFFIXES or pickled:
        raise ModelFileError(
            f"{path} looks like a pickle (torch.save) file; pickles can run arbitrary code when loaded and are "
            f"refused. Model files are .safetensors with a card, written by `python -m trainer train`."
        )
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """The card embedded in a model file, or an exported model's `NAME.card.json` (no weights loaded, no torch
    imported)."""
    path = check_path(path)
    return _checked(_card_text_of_json(path) if is_card_file(path) else _card_text_of_safetensors(path), path)


def _card_text_of_safetensors(path: Path) -> str:
    try:
        with safe_open(str(path), framework="numpy") as handle:  # numpy: reading the header never imports torch
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable safetensors model file: {error}") from error
    if "card" not in metadata:
        raise ModelFileError(f"{path} has no model card: it was not written by this program's trainer")
    return str(metadata["card"])


def _card_text_of_json(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(f"the model card {path} cannot be read: {error}") from error


def _checked(text: str, path: Path) -> dict[str, Any]:
    try:
        card = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: its model card is not valid JSON ({error}); the file is damaged") from error
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        found = card.get("format") if isinstance(card, dict) else None
        raise ModelFileError(f"{path} has format {found!r}; this program reads {FORMAT!r}")
    return card


def card_classes(card: dict[str, Any]) -> tuple[ClassInfo, ...]:
    """The class list of the black box a card names (what --class resolves against), from the card alone."""
    classes = card.get("classes", {})
    if classes.get("list") == "imagenet-1k":
        return imagenet_classes()
    return generic_classes(int(classes.get("count", card.get("masker", {}).get("num_classes", 0))))
