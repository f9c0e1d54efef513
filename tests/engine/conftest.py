"""Engine test fixtures: the model graphs of the untrained masker, and a private cache folder for exports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory) -> Path:
    """Exports and engines built by the tests go to a temporary folder, never to the user's cache."""
    folder = tmp_path_factory.mktemp("engine-cache")
    previous = os.environ.get("SALIENCY_CACHE")
    os.environ["SALIENCY_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("SALIENCY_CACHE", None)
    else:
        os.environ["SALIENCY_CACHE"] = previous


@pytest.fixture(scope="session")
def graphs(untrained_masker, blackbox):
    from engine.export.graphs import model_graphs

    return model_graphs(untrained_masker, blackbox, name="untrained")


@pytest.fixture(scope="session")
def onnx_files(graphs, engine_cache) -> dict[tuple[str, str], Path]:
    """(graph, precision) -> the cached ONNX file, exported once per test session."""
    from engine.export.cache import cached_onnx

    return {
        (graph, precision): cached_onnx(graphs, graph, precision)
        for graph in ("saliency", "classifier")
        for precision in ("fp32", "fp16")
    }
