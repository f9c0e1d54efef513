"""Backends: the `auto` choice and its reasons, `auto` falling through a backend whose set-up fails for real, set-up
errors as BackendUnavailableError, agreement with the FP32 PyTorch reference, corrupt cached files, and CUDA and
TensorRT where there are (the TensorRT plan logic without TensorRT: test_tensorrt.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backends import (
    BACKEND_NAMES,
    Availability,
    Backend,
    availability,
    build_backend,
    create_backend,
    recorded_failures,
    register_backend,
    registered_backends,
    select_backend,
    unregister_backend,
)
from engine.errors import BackendUnavailableError
from engine.export.cache import onnx_cache_path
from engine.export.check import reference_outputs
from engine.tolerances import FP16_MAX_MEAN_ABS, FP16_MIN_IOU, FP32_LOGITS_RTOL, channel_rel_diff, mask_iou

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs an NVIDIA GPU (run scripts/gpu_check.sh there)")
HAS_TENSORRT = availability("tensorrt").ok
needs_tensorrt = pytest.mark.skipif(not HAS_TENSORRT, reason="needs TensorRT and an NVIDIA GPU (scripts/gpu_check.sh)")


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


# --- set-up failures: `auto` falls through, a named backend says why ----------------------------------------------


class DamagedOnnxBackend(Backend):
    """A backend whose availability passes and whose set-up fails for real: it opens a damaged ONNX file with
    onnxruntime, which raises its own (untyped) error."""

    name = "damaged-onnx"

    def __init__(self, graphs, batch_sizes=(1,), cache_root=None) -> None:
        import onnxruntime as ort

        super().__init__(graphs, batch_sizes)
        damaged = cache_root / "damaged.onnx"
        damaged.write_bytes(b"\x08\x07garbage, not a protobuf")
        self.session = ort.InferenceSession(str(damaged), providers=["CPUExecutionProvider"])

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True, "a test backend that always says it can run")

    def infer(self, graph, feed):
        raise AssertionError("never set up, never run")


@pytest.fixture
def damaged_backend_first():
    """DamagedOnnxBackend registered (through the registry) as the first backend `auto` tries."""
    register_backend("damaged-onnx", DamagedOnnxBackend, before="tensorrt")
    yield "damaged-onnx"
    unregister_backend("damaged-onnx")


def test_the_registry_keeps_the_auto_order(damaged_backend_first) -> None:
    # the torch runtime's backends, in engine.contract's order (OpenVINO is a CPU runner, not in this registry)
    assert registered_backends() == ("damaged-onnx", *(name for name in BACKEND_NAMES if name != "openvino"))
    with pytest.raises(ValueError, match="exists already"):
        register_backend("damaged-onnx", DamagedOnnxBackend)
    with pytest.raises(ValueError, match="built-in"):
        unregister_backend("onnxruntime")


def test_auto_falls_through_a_backend_whose_set_up_fails(graphs, onnx_files, engine_cache, damaged_backend_first):
    """The exports of the session's cache (onnx_files) are reused by the onnxruntime backend that auto takes here."""
    if HAS_CUDA:
        pytest.skip("on a GPU machine auto would build the GPU backends (minutes): the same code runs on the CPU")
    backend, name, reason = build_backend("auto", graphs, batch_sizes=(1,), cache_root=engine_cache)
    with backend:
        assert name == backend.name == "onnxruntime"
        outputs = backend.infer("saliency", {"image": torch.rand(1, 3, 224, 224), "target": torch.tensor([-1])})
    assert outputs["mask_low"].shape == (1, 1, graphs.mask_size, graphs.mask_size)
    # the reason names the failed backend and the cause (onnxruntime's own error type), then the one taken
    assert reason.startswith("damaged-onnx failed: ") and "protobuf" in reason.lower()
    assert reason.endswith(f"{name}: {availability(name).reason}")
    if not HAS_TENSORRT:
        assert "; no tensorrt (" in reason
    assert "damaged-onnx" in recorded_failures()


def test_a_named_backend_that_fails_raises_with_its_cause(graphs, tmp_path, damaged_backend_first) -> None:
    with pytest.raises(BackendUnavailableError, match="damaged-onnx: ") as caught:
        build_backend("damaged-onnx", graphs, cache_root=tmp_path)
    cause = caught.value.__cause__
    assert cause is not None and type(cause).__module__.startswith("onnxruntime")  # the original error, kept


def test_a_real_backend_over_an_unrepairable_cache_entry(graphs, tmp_path) -> None:
    """onnxruntime's cached export is a folder (it cannot be deleted and exported afresh): its set-up fails with an
    OSError, which reaches the caller as BackendUnavailableError, and `auto` takes the next backend."""
    onnx_cache_path(graphs, "saliency", "fp32", root=tmp_path).mkdir(parents=True)
    with pytest.raises(BackendUnavailableError, match="onnxruntime: IsADirectoryError") as caught:
        create_backend("onnxruntime", graphs, cache_root=tmp_path)
    assert isinstance(caught.value.__cause__, IsADirectoryError)
    if HAS_CUDA:
        return  # auto takes a GPU backend before onnxruntime there
    backend, name, reason = build_backend("auto", graphs, batch_sizes=(1,), cache_root=tmp_path)
    with backend:
        assert name == "torch-cpu"
    assert "; onnxruntime failed: IsADirectoryError" in reason and reason.endswith(availability("torch-cpu").reason)


def test_options_no_backend_takes_are_programming_errors(graphs) -> None:
    with pytest.raises(TypeError, match="thread"):
        build_backend("auto", graphs, thread=2)
    with pytest.raises(TypeError):
        create_backend("torch-cpu", graphs, cache_root=None)  # torch-cpu has no cache


def test_engine_info_says_which_backend_failed_and_why(graphs, tmp_path, damaged_backend_first, capsys) -> None:
    from engine.__main__ import main

    with pytest.raises(BackendUnavailableError):
        build_backend("damaged-onnx", graphs, cache_root=tmp_path)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "damaged-onnx yes  a test backend" in out
    line = next(line for line in out.splitlines() if "last set-up failed" in line)
    assert "damaged-onnx: " in line and "protobuf" in line.lower()
    assert out.splitlines()[0].startswith("backends (auto tries them in this order")


# --- TensorRT on a GPU (scripts/gpu_check.sh runs these first where TensorRT imports) --------------------------


@pytest.fixture(scope="module")
def tensorrt_cache(tmp_path_factory):
    """One plan cache for the TensorRT tests: the plans are built once (minutes), then loaded."""
    return tmp_path_factory.mktemp("tensorrt-cache")


@needs_tensorrt
def test_tensorrt_fp16_agrees_and_one_plan_serves_every_batch_size(graphs, reference, tensorrt_cache) -> None:
    feed, mask_low, logits, _ = reference
    with create_backend("tensorrt", graphs, batch_sizes=(1,), cache_root=tensorrt_cache) as backend:
        assert len(backend.plan_paths) == 2 and set(backend.built) <= set(backend.plan_paths)
        outputs = backend.infer("saliency", {k: v.cuda() for k, v in feed.items()})
        evidence = backend.infer("classifier", {"image": feed["image"][:2].cuda()})
        plans = backend.plan_paths
    cuda_mask = outputs["mask_low"].cpu().numpy()
    assert mask_iou(cuda_mask, mask_low) > FP16_MIN_IOU and np.abs(cuda_mask - mask_low).mean() < FP16_MAX_MEAN_ABS
    assert (outputs["logits"].cpu().numpy().argmax(1) == logits.argmax(1)).all()
    assert (evidence["logits"].cpu().numpy().argmax(1) == logits[:2].argmax(1)).all()
    with create_backend("tensorrt", graphs, batch_sizes=(1, 8), cache_root=tensorrt_cache) as again:  # build's sizes
        assert again.built == [] and again.plan_paths == plans


@needs_tensorrt
def test_tensorrt_waits_for_torch_and_torch_waits_for_tensorrt(graphs, reference, tensorrt_cache) -> None:
    """Inputs written on torch's stream just before `infer` (behind a long kernel) are the ones TensorRT reads, and
    the outputs torch reads at once are the ones TensorRT wrote, on torch's default stream and on a side stream."""
    feed, mask_low, _, _ = reference
    image, target = feed["image"][:1].cuda(), feed["target"][:1].cuda()
    with create_backend("tensorrt", graphs, batch_sizes=(1,), cache_root=tensorrt_cache) as backend:
        expected = backend.infer("saliency", {"image": image, "target": target})["mask_low"].cpu()
        from_zeros = backend.infer("saliency", {"image": torch.zeros_like(image), "target": target})["mask_low"].cpu()
        assert (from_zeros - expected).abs().max() > 0.01  # what reading stale inputs would give differs
        for stream in (torch.cuda.current_stream(), torch.cuda.Stream()):
            with torch.cuda.stream(stream):
                backend.infer("saliency", {"image": torch.zeros_like(image), "target": target})  # stale inputs
                late = torch.zeros_like(image)
                torch.cuda._sleep(100_000_000)  # keeps torch's stream busy while Python goes on
                late.copy_(image)
                mask = backend.infer("saliency", {"image": late, "target": target})["mask_low"]
                assert (mask.cpu() - expected).abs().max() < 1e-3


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT can run here")
def test_engine_build_of_a_backend_that_cannot_run_fails_before_exporting(untrained_model_file, tmp_path, capsys):
    from engine.__main__ import main

    assert main(["build", str(untrained_model_file), "--backend", "tensorrt", "--out", str(tmp_path)]) == 1
    assert "error: the tensorrt backend cannot run here: TensorRT is not installed" in capsys.readouterr().err
    assert not (tmp_path / "onnx").exists()  # said at once, not after minutes of exports
