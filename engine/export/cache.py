"""The ONNX cache: each graph of a model at each precision, exported on first use into
`cache_dir()/onnx/<model key>-v<EXPORT_VERSION>-opset<OPSET>/` (atomic writes; a file that does not load is
re-exported, never trusted)."""

from __future__ import annotations

from pathlib import Path

import onnx

from engine.export.graphs import ModelGraphs
from engine.export.make import export_graph
from engine.modelfiles.export_format import EXPORT_VERSION, OPSET
from engine.paths import cache_dir, write_atomic


def onnx_cache_path(graphs: ModelGraphs, graph: str, precision: str, root: Path | None = None) -> Path:
    folder = (root or cache_dir()) / "onnx" / f"{graphs.key[:24]}-v{EXPORT_VERSION}-opset{OPSET}"
    return folder / f"{graph}-{precision}.onnx"


def cached_onnx(graphs: ModelGraphs, graph: str, precision: str, root: Path | None = None) -> Path:
    """The ONNX file of `graph` at `precision`, exported on first use; a damaged cached file is re-exported."""
    path = onnx_cache_path(graphs, graph, precision, root)
    if path.exists():
        try:
            onnx.checker.check_model(str(path))
            return path
        except Exception:  # noqa: BLE001 (onnx raises several untyped errors for damaged files)
            path.unlink(missing_ok=True)  # damaged (interrupted copy, disk error): rebuild, never trust it
    module = graphs.saliency if graph == "saliency" else graphs.classifier
    model = export_graph(module, graph, graphs.input_size, precision)
    write_atomic(path, model.SerializeToString())
    return path
