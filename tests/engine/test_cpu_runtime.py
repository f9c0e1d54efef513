"""The CPU runtime: a model prepared once (with torch) is found again without torch, damaged or stale entries are
never trusted, the runners agree with each other, and `auto` knows whether there is a GPU without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.api import Explainer
from engine.contract import AUTO
from engine.export.prepare import prepare_model_file
from engine.modelfiles.prepared import environment_key, find, index_path
from engine.paths import file_sha256
from engine.runtime.gpu_probe import nvidia_gpu_count
from engine.runtime.runners import Threads, create_runner, runner_availability

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache of its own: what one test prepares, another does not find."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SALIENCY_CACHE", str(folder))
    return folder


def test_a_prepared_model_is_found_again_and_only_while_it_fits(untrained_model_file, cache, tmp_path) -> None:
    assert find(untrained_model_file) is None
    prepared = prepare_model_file(untrained_model_file)
    again = find(untrained_model_file)
    assert again == prepared and again is not None
    assert again.input_size == 224 and len(again.classes) == 1000 and again.blackbox == "efficientnet_lite0"
    assert set(again.onnx) == {"saliency", "classifier"} and all(path.is_file() for path in again.onnx.values())
    entry = json.loads(index_path(file_sha256(untrained_model_file)).read_text())
    assert entry["environment"] == environment_key() and entry["classes"] == "imagenet-1k"
    # another file (one changed byte in its card: another hash) is not the prepared one
    changed = tmp_path / "changed.safetensors"
    data = bytearray(untrained_model_file.read_bytes())
    data[-1] = ord(" ") if data[-1] != ord(" ") else ord("\n")
    changed.write_bytes(bytes(data))
    assert find(changed) is None
    # an export that is gone, or of another size, makes the entry stale
    saliency = again.onnx["saliency"]
    saliency.write_bytes(saliency.read_bytes()[:-10])
    assert find(untrained_model_file) is None
    # another environment (package versions, export format): stale too
    entry["environment"] = entry["environment"].replace('"opset"', '"opset_old"')
    index_path(file_sha256(untrained_model_file)).write_text(json.dumps(entry))
    assert find(untrained_model_file) is None


def test_a_damaged_cached_export_is_exported_again(untrained_model_file, cache) -> None:
    prepared = prepare_model_file(untrained_model_file)
    prepared.onnx["classifier"].write_bytes(b"\x08\x07damaged, not a protobuf")
    frame = np.full((120, 160, 3), 90, np.uint8)
    with Explainer(untrained_model_file, "onnxruntime") as explainer:
        explanation = explainer.explain(frame, AUTO, evidence=True)
    assert explanation.probabilities is not None
    repaired = find(untrained_model_file)
    assert repaired is not None and repaired.onnx["classifier"].stat().st_size > 1000


def _run(code: str, cache: Path) -> dict:
    environment = {**os.environ, "SALIENCY_CACHE": str(cache), "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=600, cwd=PROJECT
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_launch_never_loads_torch(untrained_model_file, cache) -> None:
    """The first launch prepares the model (torch); the second goes straight to ONNX Runtime: torch is never
    imported, and the masks are the same."""
    code = f"""
import json, sys
import numpy as np
from engine.api import Explainer
frame = np.zeros((96, 128, 3), np.uint8); frame[20:70, 30:90] = (200, 120, 40)
with Explainer({str(untrained_model_file)!r}, "onnxruntime") as explainer:
    explanation = explainer.explain(frame, 409, evidence=True)
print(json.dumps({{"torch": "torch" in sys.modules, "mask": float(explanation.mask.sum()),
                  "probabilities": explanation.probabilities}}))
"""
    first = _run(code, cache)
    second = _run(code, cache)
    assert first["torch"] and not second["torch"]
    assert second["mask"] == first["mask"] and second["probabilities"] == first["probabilities"]


@pytest.mark.skipif(not runner_availability("openvino")[0], reason="OpenVINO is not installed")
def test_openvino_and_onnxruntime_run_the_same_exports(untrained_model_file, cache) -> None:
    """Both in FP32 on the same ONNX files: float rounding apart (engine.tolerances: channels within 1e-4 of their
    range; the mask ratio's own bound covers the rest). Measured here: masks within 3e-6, logits within 2e-6."""
    from engine.tolerances import FP32_LOGITS_RTOL

    prepared = prepare_model_file(untrained_model_file)
    rng = np.random.default_rng(0)
    feed = {"image": rng.random((2, 3, 224, 224), dtype=np.float32), "target": np.array([AUTO, 409], np.int64)}
    with create_runner("onnxruntime", prepared.onnx, Threads(1, 1)) as ort_runner:
        reference = ort_runner.run("saliency", feed)
    with create_runner("openvino", prepared.onnx, Threads(1, 1)) as openvino_runner:
        outputs = openvino_runner.run("saliency", feed)
        assert "FP32" in openvino_runner.describe()
    logits_scale = np.abs(reference["logits"]).max(axis=1, keepdims=True)
    assert (np.abs(outputs["logits"] - reference["logits"]) <= FP32_LOGITS_RTOL * logits_scale).all()
    # both are FP32 ratios of channels that agree to 1e-4 of their range: far below 1e-2 where a+b is not tiny
    assert np.abs(outputs["mask_low"] - reference["mask_low"]).mean() < 1e-4


def test_auto_asks_the_driver_about_gpus_without_torch(monkeypatch) -> None:
    assert nvidia_gpu_count() >= 0
    nvidia_gpu_count.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no device visible: none, whatever the machine has
    try:
        assert nvidia_gpu_count() == 0
    finally:
        nvidia_gpu_count.cache_clear()


def test_which_backends_can_run_is_known_without_torch() -> None:
    """The app's Backend menu asks this: every choice, with a reason; a GPU backend that cannot run is refused before
    torch loads (a saved `tensorrt` on a machine without it fails in a moment, not after seconds of torch)."""
    code = """
import json, sys
from engine.api import backend_availability
from engine.errors import BackendUnavailableError
from engine.explainer import plan_runtime
report = backend_availability()
refused = {}
for name in ("tensorrt", "torch-cuda"):
    try:
        plan_runtime(name)
    except BackendUnavailableError as error:
        refused[name] = str(error)
print(json.dumps({"torch": "torch" in sys.modules, "report": report, "refused": refused}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT)
    answer = json.loads(done.stdout)
    assert not answer["torch"]
    from engine.contract import BACKEND_CHOICES

    report = answer["report"]
    assert list(report) == list(BACKEND_CHOICES) and all(reason for _ok, reason in report.values())
    assert report["auto"][0] and report["onnxruntime"][0] == runner_availability("onnxruntime")[0]
    for name, (ok, reason) in report.items():
        if name in ("tensorrt", "torch-cuda") and not ok:
            assert answer["refused"][name] == f"the {name} backend cannot run here: {reason}"
    if nvidia_gpu_count() == 0:
        assert not report["torch-cuda"][0] and "no NVIDIA GPU" in report["torch-cuda"][1]
