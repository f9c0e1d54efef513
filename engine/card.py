"""A model file's card, read without torch: what the command lines check before they load anything.

A model file is one `.safetensors` file whose metadata key `card` holds the JSON card (see engine/modelfile.py,
which writes and loads the weights). Reading the card touches only the file's header, so checking a --model or a
--class costs milliseconds, not the seconds of importing torch and building a black box.
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


def check_path(path: str | Path) -> Path:
    """The model file at `path` (a folder holding exactly one model is accepted); refuses missing files and
    pickles."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) != 1:
            raise ModelFileError(f"{path} is a folder with {len(candidates)} .safetensors files; name the model file")
        path = candidates[0]
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
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
    """The card embedded in a model file (no weights loaded, no torch imported)."""
    path = check_path(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:  # numpy: reading the header never imports torch
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path} is not a readable safetensors model file: {error}") from error
    if "card" not in metadata:
        raise ModelFileError(f"{path} has no model card: it was not written by this program's trainer")
    try:
        card = json.loads(metadata["card"])
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
