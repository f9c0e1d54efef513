"""Exported model folders: a model's two ONNX graphs beside its card, ready for the CPU runtime without torch.

A folder holds `NAME.card.json` (the model's card) whose "graphs" section names the files the CPU runtime runs, each
with its sha256: `NAME.saliency.onnx`, `NAME.classifier.onnx`, and `NAME.weights.bin`, the weights both graphs read
(the classifier's weights are the black box's, which the saliency graph holds too: stored once). The section also
records the sha256 of the model file the graphs were built from (`NAME.safetensors`, usually in the same folder),
and the packages that built them. `saliency-engine export` writes such folders (engine/export/folder.py); the bundled
models are such folders, so a plain install (no PyTorch) explains with them at once.

The graphs are used for a model file only when they were built from exactly its bytes; for a folder (or a card)
alone, the card is the model. Every file is checked against its hash before it runs: a damaged or altered export is
refused (ModelFileError), never run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ModelFileError
from engine.modelfiles.card import CARD_SUFFIX, card_classes, check_path, is_card_file, read_card
from engine.modelfiles.prepared import PreparedModel
from engine.paths import file_sha256

GRAPHS_FORMAT = "live-saliency-graphs/1"
GRAPH_NAMES = ("saliency", "classifier")


def card_path_of(model: Path) -> Path:
    """Where the card of an exported model would be: the model itself when it is a card, else NAME.card.json beside
    NAME.safetensors."""
    return model if is_card_file(model) else model.with_name(model.name.removesuffix(".safetensors") + CARD_SUFFIX)


def exported_graphs(path: str | Path) -> PreparedModel | None:
    """The checked graphs exported for the model at `path` (a .safetensors file, an exported folder or its card), or
    None when there are none for exactly this model. Raises ModelFileError when they are there but damaged."""
    model = check_path(path)
    card_path = card_path_of(model)
    if not card_path.is_file():
        return None
    card = read_card(card_path)
    section = card.get("graphs")
    if not isinstance(section, dict) or section.get("format") != GRAPHS_FORMAT:
        return None
    if not is_card_file(model) and section.get("built_from", {}).get("sha256") != file_sha256(model):
        return None  # built from another version of the model file: the model file wins
    folder = card_path.parent
    onnx = {graph: _checked_file(folder, section, graph) for graph in GRAPH_NAMES}
    _checked_file(folder, section, "weights")
    name = card_path.name.removesuffix(CARD_SUFFIX)
    blackbox = str(card["blackbox"]["name"])
    return PreparedModel(
        name=f"{name} ({blackbox})",
        blackbox=blackbox,
        input_size=int(card["input"]["size"]),
        classes=card_classes(card),
        onnx=onnx,
        exported=True,
    )


def _checked_file(folder: Path, section: dict[str, Any], part: str) -> Path:
    try:
        entry = section[part]
        path = folder / str(entry["file"])
        expected = str(entry["sha256"])
    except (KeyError, TypeError) as error:
        raise ModelFileError(f"the card in {folder} has a damaged 'graphs' section ({part}: {error})") from error
    if path.parent != folder:  # a name, not a path: the card may not point outside its folder
        raise ModelFileError(f"the card in {folder} names {entry['file']!r}, which is not a file of that folder")
    if not path.is_file():
        raise ModelFileError(f"the exported model in {folder} lacks {path.name}: export it again")
    if file_sha256(path) != expected:
        raise ModelFileError(
            f"{path} does not match the hash in its card: the export was altered or damaged; export it again "
            "(`saliency-engine export MODEL.safetensors --out FOLDER`)"
        )
    return path
