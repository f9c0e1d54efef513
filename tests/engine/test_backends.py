"""Backends: the `auto` choice and its reasons, agreement with the FP32 PyTorch reference, the TensorRT plan cache
logic (with fake plans: TensorRT cannot be installed here), corrupt cached files, and CUDA where there is one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.backends import BACKEND_NAMES, availability, create_backend, select_backend
from engine.backends.tensorrt import (
    PlanKey,
    load_or_build,
    profile_shapes,
    require_tensorrt,
    timing_cache_path,
)
from engine.errors import BackendUnavailableError
from engine.export.cache import onnx_cache_path
from engine.export.check import reference_outputs
from engine.tolerances import FP16_MAX_MEAN_ABS, FP16_MIN_IOU, FP32_LOGITS_RTOL, channel_rel_diff, mask_iou

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs an NVIDIA GPU (run scripts/gpu_check.sh there)")


@pytest.fixture(scope="module")
def photos(data_root) -> torch.Tensor:
    """Four real photos at 224 x 224, (4, 3, 224, 224) in [0, 1]."""
    import cv2

    files = sorted((data_root / "imagenet-val-dev").glob("*.JPEG"))[:4]
    images = [
        cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (224, 224), interpolation=cv2.INTER_AREA)
        for f in files
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def reference(graphs, photos):
    feed = {"image": photos, "target": torch.tensor([-1, 281, 409, -1])}
    expected = reference_outputs(graphs.saliency, feed)
    mask_low, logits = expected.outputs
    return feed, mask_low, logits, expected.mask_bound()  # bound: the FP32 agreement bound per pixel


def test_auto_explains_its_choice() -> None:
    name, reason = select_backend("auto")
    assert name in BACKEND_NAMES and reason
    for skipped in BACKEND_NAMES[: BACKEND_NAMES.index(name)]:
        assert f"no {skipped} (" in reason  # every better backend says why it was not taken
    if not HAS_CUDA:
        assert name == "onnxruntime" and "no torch-cuda (no NVIDIA GPU" in reason


def test_unavailable_and_unknown_backends_raise_clear_errors() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown backend 'fast'"):
        select_backend("fast")
    status = availability("tensorrt")
    assert not status.ok or HAS_CUDA
    if not status.ok:
        assert "TensorRT" in status.reason
        with pytest.raises(
            BackendUnavailableError, match="tensorrt backend cannot run here: TensorRT is not installed"
        ):
            select_backend("tensorrt")


def test_tensorrt_import_is_optional() -> None:
    """Here `tensorrt` is only the type stubs (an empty namespace package): unavailable, never a crash."""
    try:
        version = require_tensorrt()
    except BackendUnavailableError as error:
        assert "not installed" in str(error)
    else:
        assert version[0].isdigit()


@pytest.mark.parametrize("name", ["torch-cpu", "onnxruntime"])
def test_fp32_backends_agree_with_pytorch(graphs, reference, name: str) -> None:
    """Backends cannot show their head channels: each mask pixel is held to the bound that the channel tolerance
    (verified on the exports by engine.export.check.compare) implies there, from PyTorch's own |C0| + |C1|
    (engine.tolerances: M = |C0| / (|C0| + |C1| + eps) magnifies float noise where both channels vanish)."""
    feed, mask_low, logits, bound = reference
    with create_backend(name, graphs) as backend:
        outputs = backend.infer("saliency", feed)
        evidence = backend.infer("classifier", {"image": feed["image"][:2]})
    difference = np.abs(outputs["mask_low"].numpy() - mask_low)
    assert (difference <= bound).all(), float((difference / bound).max())
    assert channel_rel_diff(logits, outputs["logits"].numpy()) <= FP32_LOGITS_RTOL
    assert channel_rel_diff(logits[:2], evidence["logits"].numpy()) <= FP32_LOGITS_RTOL


def test_onnxruntime_fp16_keeps_the_mask(graphs, reference) -> None:
    feed, mask_low, logits, _ = reference
    with create_backend("onnxruntime", graphs, precision="fp16", threads=1) as backend:
        assert backend.threads == 1 and "FP16" in backend.describe()
        outputs = backend.infer("saliency", feed)
    # FP16 is judged by what a user sees (engine.tolerances): measured on AMD, IoU 0.993, mean |dM| 3e-3
    assert mask_iou(outputs["mask_low"].numpy(), mask_low) > FP16_MIN_IOU
    assert np.abs(outputs["mask_low"].numpy() - mask_low).mean() < FP16_MAX_MEAN_ABS
    assert (outputs["logits"].numpy().argmax(1) == logits.argmax(1)).all()


def test_onnxruntime_repairs_a_corrupt_cached_onnx(graphs, reference, tmp_path) -> None:
    feed, mask_low, _, bound = reference
    for graph in ("saliency", "classifier"):
        path = onnx_cache_path(graphs, graph, "fp32", root=tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x08\x07garbage, not a protobuf")
    with create_backend("onnxruntime", graphs, cache_root=tmp_path) as backend:
        outputs = backend.infer("saliency", {k: v[:1] for k, v in feed.items()})
    assert (np.abs(outputs["mask_low"].numpy() - mask_low[:1]) <= bound[:1]).all()  # the FP32 export, repaired


def test_tensorrt_plan_key_covers_everything_a_plan_depends_on(tmp_path) -> None:
    shapes = profile_shapes("saliency", 224, (1, 8))
    assert shapes == (
        ("image", (1, 3, 224, 224), (1, 3, 224, 224), (8, 3, 224, 224)),
        ("target", (1,), (1,), (8,)),
    )
    assert profile_shapes("classifier", 224, (1,))[0][3] == (2, 3, 224, 224)  # preserved + destroyed
    key = PlanKey("saliency", "ab" * 32, "10.13.0", "NVIDIA H100", "90", "fp16", shapes)
    variants = [
        PlanKey("saliency", "cd" * 32, "10.13.0", "NVIDIA H100", "90", "fp16", shapes),
        PlanKey("saliency", "ab" * 32, "11.0.0", "NVIDIA H100", "90", "fp16", shapes),
        PlanKey("saliency", "ab" * 32, "10.13.0", "NVIDIA L4", "89", "fp16", shapes),
        PlanKey("saliency", "ab" * 32, "10.13.0", "NVIDIA H100", "90", "fp32", shapes),
        PlanKey(
            "saliency",
            "ab" * 32,
            "10.13.0",
            "NVIDIA H100",
            "90",
            "fp16",
            profile_shapes("saliency", 224, (1, 16)),
        ),
    ]
    paths = {key.plan_path(tmp_path)} | {variant.plan_path(tmp_path) for variant in variants}
    assert len(paths) == 6
    assert key.plan_path(tmp_path) == PlanKey(*[getattr(key, f) for f in key.__dataclass_fields__]).plan_path(tmp_path)
    cache = timing_cache_path(tmp_path, "10.13.0", "NVIDIA H100 80GB HBM3", "90")
    assert cache.parent == tmp_path / "tensorrt" and " " not in cache.name


def test_tensorrt_plan_cache_rebuilds_a_corrupt_plan(tmp_path) -> None:
    """load_or_build with a fake engine: plans are b'PLAN' + payload; anything else fails to deserialise."""
    key = PlanKey("saliency", "ab" * 32, "10.13.0", "GPU", "90", "fp16", profile_shapes("saliency", 224, (1,)))
    builds: list[int] = []

    def deserialize(data: bytes) -> str | None:
        return data.decode() if data.startswith(b"PLAN") else None

    def build() -> bytes:
        builds.append(1)
        return b"PLAN-%d" % len(builds)

    engine, built = load_or_build(key, tmp_path, deserialize, build)
    assert (engine, built) == ("PLAN-1", True)
    card = json.loads(key.plan_path(tmp_path).with_suffix(".json").read_text())
    assert card["gpu_name"] == "GPU" and card["precision"] == "fp16"
    assert load_or_build(key, tmp_path, deserialize, build) == ("PLAN-1", False)  # cached, not rebuilt
    key.plan_path(tmp_path).write_bytes(b"\x00truncated")  # a damaged cache file
    assert load_or_build(key, tmp_path, deserialize, build) == ("PLAN-2", True)
    assert key.plan_path(tmp_path).read_bytes() == b"PLAN-2"

    def broken(data: bytes) -> str | None:
        raise RuntimeError("deserialisation crashed")

    key.plan_path(tmp_path).write_bytes(b"PLAN-old")
    with pytest.raises(BackendUnavailableError, match="cannot deserialise"):
        load_or_build(key, tmp_path, broken, build)  # never trusts what it cannot load


def test_tensorrt_backend_says_why_it_cannot_run(graphs) -> None:
    if availability("tensorrt").ok:
        pytest.skip("TensorRT is installed here: covered by the GPU check")
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        create_backend("tensorrt", graphs)


@needs_cuda
def test_cuda_backend_fp16_agrees_and_captures_graphs(graphs, reference) -> None:
    feed, mask_low, logits, _ = reference
    with create_backend("torch-cuda", graphs, batch_sizes=(1, 4)) as backend:
        assert "saliency@1" in backend.describe(), backend.describe()
        outputs = backend.infer("saliency", {k: v.cuda() for k, v in feed.items()})
        single = backend.infer("saliency", {k: v[:1].cuda() for k, v in feed.items()})
    cuda_mask = outputs["mask_low"].cpu().numpy()
    # FP16: the product-level gate of engine.tolerances (IoU at 0.5, mean |dM|); not measured on this CPU machine
    assert mask_iou(cuda_mask, mask_low) > FP16_MIN_IOU and np.abs(cuda_mask - mask_low).mean() < FP16_MAX_MEAN_ABS
    assert (outputs["logits"].cpu().numpy().argmax(1) == logits.argmax(1)).all()
    assert mask_iou(single["mask_low"].cpu().numpy(), mask_low[:1]) > FP16_MIN_IOU
