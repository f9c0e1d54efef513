"""Exported model folders: the bundled models carry their ONNX graphs (current, and the same model as their
.safetensors within the derived FP32 tolerances), `saliency-engine export` writes such folders, and a folder, its
card or its model file open without torch; damaged or stale graphs are never run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from engine.api import Explainer
from engine.contract import AUTO
from engine.errors import ModelFileError
from engine.export.prepare import export_folder
from engine.modelfiles.card import read_card
from engine.modelfiles.exported import GRAPH_NAMES, exported_graphs
from engine.paths import bundled_models, file_sha256
from engine.tolerances import FP32_CHANNEL_RTOL, FP32_LOGITS_RTOL
from engine.tools.build import real_images

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model_path", bundled_models(), ids=lambda path: path.stem)
def test_every_bundled_model_carries_current_graphs(model_path: Path) -> None:
    """Built from exactly the bundled .safetensors (a retrained model without `make graphs` fails here), every file
    as its card says."""
    prepared = exported_graphs(model_path)
    assert prepared is not None, f"{model_path.name}'s graphs were built from another file: run `make graphs`"
    assert prepared.exported and set(prepared.onnx) == set(GRAPH_NAMES)
    section = read_card(model_path.with_name(f"{model_path.stem}.card.json"))["graphs"]
    assert section["built_from"]["sha256"] == file_sha256(model_path)
    assert exported_graphs(model_path.parent) == prepared  # the folder opens as the same model


@pytest.mark.slow
@pytest.mark.parametrize("model_path", bundled_models(), ids=lambda path: path.stem)
def test_the_bundled_graphs_are_the_bundled_models(model_path: Path) -> None:
    """What the plain install runs is the .safetensors model (PyTorch FP32) to float rounding: head channels and
    logits within engine.tolerances' FP32 bounds, every mask pixel within the bound those imply, on random images and
    on frames of the demo clip."""
    from engine.export.check import compare
    from engine.export.graphs import model_graphs
    from engine.modelfiles.loading import load_masker

    model = load_masker(model_path)
    graphs = model_graphs(model.masker, model.blackbox, name=model_path.stem)
    prepared = exported_graphs(model_path)
    assert prepared is not None
    images = real_images(graphs.input_size)
    assert images is not None
    for graph in GRAPH_NAMES:
        module = graphs.saliency if graph == "saliency" else graphs.classifier
        for given in (None, images):
            check = compare(module, prepared.onnx[graph], graph, "fp32", graphs.input_size, images=given)
            assert check.passed and check.logits_rel_diff <= FP32_LOGITS_RTOL, check.describe()
            if graph == "saliency":
                assert check.channel_rel_diff is not None and check.channel_rel_diff <= FP32_CHANNEL_RTOL
                assert check.mask_bound_used is not None and check.mask_bound_used <= 1.0, check.describe()


@pytest.fixture(scope="module")
def exported(untrained_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`export_folder` of the untrained model file: the folder's card."""
    lines: list[str] = []
    card = export_folder(untrained_model_file, tmp_path_factory.mktemp("exported") / "untrained", say=lines.append)
    assert sum("-> ok" in line for line in lines) == 2, lines  # both graphs checked against PyTorch
    return card


def test_an_exported_folder_holds_both_graphs_and_their_shared_weights_once(exported: Path) -> None:
    folder = exported.parent
    names = {path.name for path in folder.iterdir()}
    assert names == {
        "untrained.card.json",
        "untrained.safetensors",
        "untrained.saliency.onnx",
        "untrained.classifier.onnx",
        "untrained.weights.bin",
    }
    weights = (folder / "untrained.weights.bin").stat().st_size
    stored = {}
    for graph in GRAPH_NAMES:
        model = onnx.load(str(folder / f"untrained.{graph}.onnx"), load_external_data=False)
        external = [tensor for tensor in model.graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL]
        assert external and all(not tensor.raw_data for tensor in external)
        stored[graph] = sum(int(dict((e.key, e.value) for e in t.external_data)["length"]) for t in external)
    # every classifier weight is the black box's, which the saliency graph holds too: stored once
    assert stored["saliency"] <= weights < stored["saliency"] + stored["classifier"] // 10


def test_a_folder_its_card_and_its_model_file_explain_alike(exported: Path, untrained_model_file: Path) -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[30:90, 40:120] = (200, 120, 40)
    results = []
    for path in (exported.parent, exported, exported.parent / "untrained.safetensors", untrained_model_file):
        with Explainer(path, "onnxruntime") as explainer:
            results.append(explainer.explain(frame, AUTO, evidence=True))
    for result in results[1:]:
        assert np.array_equal(result.mask, results[0].mask) and result.probabilities == results[0].probabilities


def test_damaged_graphs_are_refused_and_stale_ones_left_aside(exported: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(exported.parent, tmp_path / "copy")
    weights = folder / "untrained.weights.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the hash in its card"):
        exported_graphs(folder)
    # a model file that changed since its export: the graphs are not its graphs (the model file wins)
    model = folder / "untrained.safetensors"
    model.write_bytes(model.read_bytes() + b" ")
    assert exported_graphs(model) is None
    # a card that points outside its folder
    card = json.loads((folder / "untrained.card.json").read_text())
    card["graphs"]["saliency"]["file"] = "../untrained.saliency.onnx"
    (folder / "untrained.card.json").write_text(json.dumps(card))
    (folder / "untrained.safetensors").unlink()
    with pytest.raises(ModelFileError, match="not a file of that folder"):
        exported_graphs(folder)


def test_the_export_command_writes_a_folder_and_refuses_an_exported_model(exported: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "export", str(exported), "--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "is exported already; export its .safetensors file" in done.stderr
