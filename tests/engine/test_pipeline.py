"""engine.api.Explainer (onnxruntime backend, the CPU default): the contract with the app, bad frames, bad classes.
(torch-cpu runs the same pipeline; test_backends checks that both backends agree.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Explainer, Explanation
from engine.contract import AUTO
from engine.errors import UnknownClassError
from engine.tolerances import FP16_MAX_MEAN_ABS, FP16_MIN_IOU
from tests.engine.bounds import frame_mask_bounds


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    # no gate: these tests explain classes the black box hardly sees on the frame (the gate: test_gate.py)
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", name="untrained", gate=0.0) as explainer:
        yield explainer


@pytest.fixture(scope="module")
def frame(data_root) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(data_root / "videos" / "box.mp4"))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_explanation_follows_the_contract(explainer: Explainer, frame: np.ndarray) -> None:
    result = explainer.explain(frame)
    assert isinstance(result, Explanation)
    height, width = frame.shape[:2]
    assert result.mask.shape == (height, width) and result.mask.dtype == np.float32
    assert 0 <= result.mask.min() and result.mask.max() <= 1
    for view in (result.overlay, result.mask_image, result.preserved, result.destroyed):
        assert view.shape == (height, width, 3) and view.dtype == np.uint8
    assert result.target == result.top5[0][0]  # "auto" = the black box's top-1
    assert result.target_name == explainer.classes[result.target].display_name
    assert len(result.top5) == 5 and all(0 <= p <= 1 for _, _, p in result.top5)
    assert result.top5 == sorted(result.top5, key=lambda item: -item[2])
    assert set(result.probabilities) == {"frame", "preserved", "destroyed"}
    assert result.probabilities["frame"] == pytest.approx(result.top5[0][2])
    assert set(result.timings_ms) == {"preprocess", "model", "composite", "evidence", "total"}
    assert result.timings_ms["total"] == pytest.approx(sum(v for k, v in result.timings_ms.items() if k != "total"))
    if result.box is not None:
        x0, y0, x1, y1 = result.box
        assert (result.mask[y0:y1, x0:x1] >= 0.5).any() and (result.mask >= 0.5).sum() == (
            result.mask[y0:y1, x0:x1] >= 0.5
        ).sum()
    assert explainer.backend_name == "onnxruntime" and explainer.backend_reason
    assert explainer.model_description == "untrained (efficientnet_lite0)"


def test_target_choices(explainer: Explainer, frame: np.ndarray) -> None:
    chosen = explainer.explain(frame, 281, evidence=False)
    assert chosen.target == 281 and chosen.target_name == "tabby" and chosen.probabilities is None
    assert "evidence" not in chosen.timings_ms
    assert explainer.explain(frame, "tabby", evidence=False).target == 281
    other = explainer.explain(frame, 409, evidence=False)
    # One backend, the same kernels: without the class's effect the masks would be identical. Measured on AMD: 1.6e-2
    assert np.abs(other.mask - chosen.mask).max() > 1e-3  # the class selector changes the mask
    for bad in (1000, -2, "not a class at all"):
        with pytest.raises(UnknownClassError):
            explainer.explain(frame, bad)
    top = explainer.explain(frame, AUTO, evidence=False)  # the contract's one encoding of "auto" (-1)
    assert top.target == top.top5[0][0] and explainer.explain(frame, "auto", evidence=False).target == top.target


def test_fill_and_opacity_choices(explainer: Explainer, frame: np.ndarray) -> None:
    black = explainer.explain(frame, 409, fill="black", opacity=0.0, evidence=False)
    np.testing.assert_array_equal(black.overlay, frame)
    expected = np.round(frame * black.mask[..., None]).astype(int)
    assert np.abs(black.preserved.astype(int) - expected).max() <= 1  # OpenCV's blend rounds on its own: 1 level
    grey = explainer.explain(frame, 409, fill="grey", evidence=False)
    assert not np.array_equal(grey.destroyed, black.destroyed)
    with pytest.raises(ValueError, match="fill"):
        explainer.explain(frame, fill="pink")
    with pytest.raises(ValueError, match="opacity"):
        explainer.explain(frame, opacity=2.0)


def test_grey_rgba_and_odd_frames(explainer: Explainer, frame: np.ndarray) -> None:
    grey = frame[:, :, 1]
    from_grey = explainer.explain(grey, 409, evidence=False)
    assert from_grey.frame.shape == frame.shape and np.array_equal(from_grey.frame[:, :, 0], grey)
    assert explainer.explain(grey[:, :, None], 409, evidence=False).frame.shape == frame.shape
    rgba = np.dstack([frame, np.full(frame.shape[:2], 7, np.uint8)])
    np.testing.assert_allclose(
        explainer.explain(rgba, 409, evidence=False).mask, explainer.explain(frame, 409, evidence=False).mask
    )
    tiny = explainer.explain(np.full((1, 1, 3), 200, np.uint8), "auto")
    assert tiny.mask.shape == (1, 1) and tiny.overlay.shape == (1, 1, 3)
    for bad in (
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 5, 3), np.uint8),
        [1, 2],
    ):
        with pytest.raises(ValueError):
            explainer.explain(bad)


def test_8k_frame(explainer: Explainer) -> None:
    frame = np.zeros((4320, 7680, 3), np.uint8)
    frame[1000:3000, 2000:5000] = (200, 120, 40)
    result = explainer.explain(frame, 409, evidence=False)
    assert result.mask.shape == (4320, 7680) and result.preserved.shape == frame.shape


def test_batch_matches_single_frames(explainer: Explainer, graphs, frame: np.ndarray) -> None:
    flipped = np.ascontiguousarray(frame[:, ::-1])
    batch = explainer.explain_batch([frame, flipped], ["auto", 409], evidence=True)
    single = [explainer.explain(frame, "auto"), explainer.explain(flipped, 409)]
    bounds = frame_mask_bounds(graphs, [frame, flipped], [-1, 409])
    for many, one, bound in zip(batch, single, bounds):
        assert many.target == one.target
        # Another batch size may take other kernels: each side within the FP32 bound of PyTorch (engine.tolerances)
        assert (np.abs(many.mask - one.mask) <= 2 * bound).all()
        # Measured on AMD: identical here, and each side within 1.7e-6 of the torch-cpu backend's: a margin of 60x
        assert many.probabilities == pytest.approx(one.probabilities, abs=1e-4)


def test_torch_cpu_backend_explains_the_same(explainer: Explainer, graphs, untrained_masker, blackbox, frame) -> None:
    with Explainer.from_masker(untrained_masker, blackbox, "torch-cpu", gate=0.0) as reference:
        expected = reference.explain(frame, 409, evidence=False)
    actual = explainer.explain(frame, 409, evidence=False)
    (bound,) = frame_mask_bounds(graphs, [frame], [409])  # torch-cpu is the reference itself
    assert (np.abs(actual.mask - expected.mask) <= bound).all()
    assert actual.top5[0][0] == expected.top5[0][0]
    # preserved = X M + A (1 - M) on 0..255, rounded: moves by at most 255 |dM| before rounding, by 1 more after
    moved = np.abs(actual.preserved.astype(int) - expected.preserved.astype(int))
    assert (moved <= np.floor(255 * bound)[..., None] + 1).all()


def test_device_pipeline_path_matches_the_host_path(explainer: Explainer, graphs, frame: np.ndarray) -> None:
    """The GPU backends' kernels (torch compositing on the device), run here on the CPU device, through the same
    stages as the host kernels."""
    from engine.backends import create_backend
    from engine.runtime.device import DeviceKernels
    from engine.runtime.stages import FramePipeline

    flipped = np.ascontiguousarray(frame[::-1])
    with create_backend("torch-cpu", graphs, batch_sizes=(2,)) as backend:
        device_path = FramePipeline(DeviceKernels(backend, graphs.input_size), explainer.classes)
        on_device = device_path.run(
            [device_path.prepare(frame), device_path.prepare(flipped)],
            [-1, 409],
            fill="blur",
            opacity=0.5,
            evidence=True,
        )
        later = device_path.evidence(on_device[1])
    on_host = explainer.explain_batch([frame, flipped], [-1, 409], fill="blur", opacity=0.5, evidence=True)
    # the evidence check made later, from what the explanation keeps, is the one made at once (the same graph on the
    # same input: float rounding only)
    assert later == pytest.approx(on_device[1].probabilities, abs=1e-5)
    # The two paths resize the frame differently (model inputs differ by up to 1/255): a perturbed input, not
    # rounding, so the bounds are measured ones. On AMD: mask mean |dM| 1.8e-3 (5x margin), views' mean
    # difference 0.88 levels at most (3.4x), probabilities 7.2e-3 (2.8x).
    for device_result, host_result in zip(on_device, on_host):
        assert device_result.target == host_result.target and device_result.top5[0][0] == host_result.top5[0][0]
        assert np.abs(device_result.mask - host_result.mask).mean() < 0.01
        for view in ("overlay", "mask_image", "preserved", "destroyed"):
            difference = np.abs(getattr(device_result, view).astype(int) - getattr(host_result, view).astype(int))
            assert difference.mean() < 3, view
        assert device_result.probabilities == pytest.approx(host_result.probabilities, abs=0.02)
        assert set(device_result.timings_ms) == set(host_result.timings_ms)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (run scripts/gpu_check.sh there)")
def test_cuda_pipeline_matches_the_cpu_pipeline(blackbox, frame) -> None:
    """torch-cuda (FP16, GPU compositing) against onnxruntime (FP32, OpenCV compositing) on a real frame.

    With the bundled (trained) model: an untrained masker's values hover around the 0.5 threshold, where FP16
    rounding alone moved the IoU to 0.970 on an H200.
    """
    from engine.modelfiles.modelfile import load_model
    from engine.paths import DEFAULT_MODEL
    from engine.tolerances import mask_iou

    masker, _ = load_model(DEFAULT_MODEL, blackbox)
    with Explainer.from_masker(masker, blackbox, "torch-cuda", batch_sizes=(1, 4)) as gpu:
        assert gpu.backend.device.type == "cuda"
        on_gpu = gpu.explain(frame, 409)
        batch = gpu.explain_batch([frame] * 4, [409] * 4, evidence=False)
    with Explainer.from_masker(masker, blackbox, "onnxruntime") as cpu:
        on_cpu = cpu.explain(frame, 409)
    # FP16 against FP32, and two compositors: the product-level gates of engine.tolerances (IoU at 0.5, mean |dM|);
    # the views' and probabilities' bounds are the device-path test's with room for FP16 (not measurable here)
    assert mask_iou(on_gpu.mask, on_cpu.mask) > FP16_MIN_IOU
    assert np.abs(on_gpu.mask - on_cpu.mask).mean() < FP16_MAX_MEAN_ABS
    for view in ("overlay", "mask_image", "preserved", "destroyed"):
        gpu_view, cpu_view = getattr(on_gpu, view), getattr(on_cpu, view)
        assert gpu_view.shape == cpu_view.shape and gpu_view.dtype == np.uint8
        assert np.abs(gpu_view.astype(int) - cpu_view.astype(int)).mean() < 4, view
    assert on_gpu.top5[0][0] == on_cpu.top5[0][0]
    assert on_gpu.probabilities == pytest.approx(on_cpu.probabilities, abs=0.03)
    # One batch of identical frames: the same kernels on each item; 1e-3 allows for position-dependent reduction
    # orders on the GPU (FP16 channels, ~1e-2 of their range, through the ratio), not measured here
    assert all(np.allclose(item.mask, batch[0].mask, atol=1e-3) for item in batch)
    assert on_gpu.timings_ms["total"] > 0
