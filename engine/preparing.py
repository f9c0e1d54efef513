"""Preparing a model file for the CPU runtime, the long way (torch): load and check it, export both graphs to ONNX
(cached by the model's key), and record the result in the index of prepared models (engine/prepared.py), so that
the next launch finds it without torch."""

from __future__ import annotations

from pathlib import Path

from engine.export.cache import cached_onnx
from engine.graphs import ModelGraphs, model_graphs
from engine.loading import load_masker
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from engine.prepared import PreparedModel, record

GRAPHS = ("saliency", "classifier")


def prepared_from_graphs(graphs: ModelGraphs, blackbox: BlackBox, root: Path | None = None) -> PreparedModel:
    """The FP32 ONNX exports of `graphs` (exported on first use) as a PreparedModel."""
    return PreparedModel(
        name=graphs.name,
        blackbox=blackbox.name,
        input_size=graphs.input_size,
        classes=blackbox.classes,
        onnx={graph: cached_onnx(graphs, graph, "fp32", root) for graph in GRAPHS},
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
