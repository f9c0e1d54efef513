"""Preparing a model file for the CPU runtime, the long way (torch), in one of two ways:

- for this machine: load and check it, export both graphs to ONNX (cached by the model's key), and record the result
  in the index of prepared models (engine/modelfiles/prepared.py), so that the next launch finds it without torch;
- to ship: an exported model folder (read by engine/modelfiles/exported.py, without torch), `saliency-engine export
  MODEL --out FOLDER`: both FP32 graphs with their weights in one shared file, checked against PyTorch, and the card
  with a "graphs" section that holds every file's sha256. The bundled models are made this way. Both graphs come from
  the ONNX cache and are rewritten with their initializers as external data: a tensor that both graphs hold (every
  weight of the black box) is stored once. The files are written first and the card last, each atomically, so that a
  folder whose card names its graphs is complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
from onnx import external_data_helper, numpy_helper

from engine.errors import ModelFileError
from engine.export.cache import cached_onnx
from engine.export.check import compare
from engine.export.graphs import ModelGraphs, model_graphs
from engine.modelfiles.card import CARD_SUFFIX
from engine.modelfiles.exported import GRAPH_NAMES, GRAPHS_FORMAT
from engine.modelfiles.loading import load_masker
from engine.modelfiles.prepared import PreparedModel, environment_key, record
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from engine.paths import file_sha256, write_atomic

_ALIGNMENT = 64  # bytes: each tensor starts on a cache line of the weights file
_INLINE_BELOW = 1024  # bytes: small tensors (shapes, scalars) stay in the graph, where they are read at once


def prepared_from_graphs(graphs: ModelGraphs, blackbox: BlackBox, root: Path | None = None) -> PreparedModel:
    """The FP32 ONNX exports of `graphs` (exported on first use) as a PreparedModel."""
    return PreparedModel(
        name=graphs.name,
        blackbox=blackbox.name,
        input_size=graphs.input_size,
        classes=blackbox.classes,
        onnx={graph: cached_onnx(graphs, graph, "fp32", root) for graph in GRAPH_NAMES},
    )


def prepare_masker(masker: Masker, blackbox: BlackBox, name: str, root: Path | None = None) -> PreparedModel:
    """A masker already in memory (benchmarks, tests): exported, not indexed (there is no file to key it by)."""
    return prepared_from_graphs(model_graphs(masker.cpu(), blackbox.cpu(), name=name), blackbox, root)


def prepare_model_file(path: Path, root: Path | None = None) -> PreparedModel:
    """Load `path` (its card and weights are checked on the way), export it, index it."""
    model = load_masker(path)
    prepared = prepare_masker(model.masker, model.blackbox, path.stem, root)
    record(path, prepared, root)
    return prepared


def export_folder(model_path: Path, out: Path, say: Callable[[str], None] = print, root: Path | None = None) -> Path:
    """Export the model at `model_path` into `out` (made if needed) and return the card's path. `root`: the ONNX
    cache to export through (default: the user cache)."""
    model = load_masker(model_path)  # the card, the weights' hash and the black box are checked here
    name = model_path.name.removesuffix(".safetensors")
    graphs = model_graphs(model.masker, model.blackbox, name=name)
    out.mkdir(parents=True, exist_ok=True)
    weights_name = f"{name}.weights.bin"
    protos = {graph: onnx.load(str(cached_onnx(graphs, graph, "fp32", root))) for graph in GRAPH_NAMES}
    weights = _share_weights(protos, weights_name)
    files: dict[str, Path] = {"weights": write_atomic(out / weights_name, weights)}
    for graph, proto in protos.items():
        files[graph] = write_atomic(out / f"{name}.{graph}.onnx", proto.SerializeToString())
    for graph in GRAPH_NAMES:  # the files as written, run by ONNX Runtime, against the PyTorch model
        module = graphs.saliency if graph == "saliency" else graphs.classifier
        check = compare(module, files[graph], graph, "fp32", graphs.input_size)
        say(f"  {files[graph].name}: {check.describe()}")
        if not check.passed:
            raise ModelFileError(f"the export {files[graph]} does not match PyTorch: {check.describe()}")
    copied = out / model_path.name
    if copied.resolve() != model_path.resolve():
        shutil.copyfile(model_path, copied)  # the folder is the whole model: the torch backends load this file
    card = dict(model.card)
    card["graphs"] = _graphs_section(model_path, files)
    card_path = write_atomic(out / f"{name}{CARD_SUFFIX}", (json.dumps(card, indent=2) + "\n").encode())
    for path in (*files.values(), card_path):
        say(f"  wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return card_path


def _share_weights(protos: dict[str, onnx.ModelProto], location: str) -> bytes:
    """Move every initializer of at least _INLINE_BELOW bytes into one buffer, each distinct tensor once, and point
    the graphs at it (`location`, relative to the graphs' folder). Returns the buffer."""
    buffer = bytearray()
    offsets: dict[str, int] = {}
    for proto in protos.values():
        for tensor in proto.graph.initializer:
            data = numpy_helper.to_array(tensor).tobytes()
            if len(data) < _INLINE_BELOW:
                continue
            tensor.raw_data = data  # (set_external_data wants it there; float_data and the like are cleared below)
            digest = hashlib.sha256(data).hexdigest()
            if digest not in offsets:
                buffer.extend(b"\0" * (-len(buffer) % _ALIGNMENT))
                offsets[digest] = len(buffer)
                buffer.extend(data)
            _point_at(tensor, location, offsets[digest], len(data))
    return bytes(buffer)


def _point_at(tensor: onnx.TensorProto, location: str, offset: int, length: int) -> None:
    """`tensor` without its data, reading it from `location` instead."""
    external_data_helper.set_external_data(tensor, location, offset=offset, length=length)
    for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        tensor.ClearField(field)
    tensor.data_location = onnx.TensorProto.EXTERNAL


def _graphs_section(model_path: Path, files: dict[str, Path]) -> dict[str, Any]:
    section: dict[str, Any] = {
        "format": GRAPHS_FORMAT,
        "built_from": {"file": model_path.name, "sha256": file_sha256(model_path)},
        "environment": json.loads(environment_key()),
    }
    for part, path in files.items():
        section[part] = {"file": path.name, "sha256": file_sha256(path), "size": path.stat().st_size}
    return section
