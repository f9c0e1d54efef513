"""The compositing views, OpenCV and torch implementations against each other and against Phi's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.runtime.composite_device import TorchCompositor
from engine.runtime.composite_host import HostCompositor, fit_size, full_resolution, heat_lut, mask_box

SIZE = 224


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 256, size=(12, 16, 3)).astype(np.uint8)
    import cv2

    return cv2.resize(smooth, (160, 120), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def mask_low() -> np.ndarray:
    yy, xx = np.mgrid[0:56, 0:56].astype(np.float32)
    return np.clip(1.5 - np.hypot(yy - 28, xx - 20) / 12, 0, 1).astype(np.float32)  # a soft disc


def test_mask_box() -> None:
    mask = np.zeros((10, 20), np.float32)
    assert mask_box(mask) is None
    mask[2:5, 3:9] = 0.7
    mask[6, 15] = 0.4  # below the threshold
    assert mask_box(mask) == (3, 2, 9, 5)


def test_heat_lut_runs_blue_to_red() -> None:
    lut = heat_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0, 2] > 100 and lut[0, 0] == 0  # blue at 0
    assert lut[255, 0] > 100 and lut[255, 2] == 0  # red at 1


@pytest.mark.parametrize("fill", ["blur", "grey", "black"])
def test_numpy_and_torch_compositors_agree(frame: np.ndarray, mask_low: np.ndarray, fill: str) -> None:
    numpy_ops = HostCompositor(SIZE)
    torch_ops = TorchCompositor(SIZE, torch.device("cpu"))
    frames = torch_ops.upload([frame])

    resized = [numpy_ops.model_image(frame)]
    image_np = numpy_ops.model_input(resized)
    image_torch = torch_ops.model_input(frames)
    assert image_np.shape == image_torch.shape == (1, 3, SIZE, SIZE)
    # Both resize with antialiasing and round to uint8 (one level at most between two implementations), then scale
    # by 1/255 in float32 (a few units of roundoff, < 1e-6). Measured on AMD: exactly one level at most.
    assert np.abs(image_np - image_torch.numpy()).max() <= 1 / 255 + 1e-6

    fill_np, fill_torch = numpy_ops.fill_low(resized[0], fill), torch_ops.fill_low(image_torch, fill)
    views_np = numpy_ops.views(frame, mask_low, fill_np, 0.4)
    (views_torch,) = torch_ops.views(frames, torch.from_numpy(mask_low)[None, None], fill_torch, 0.4)
    # The same bilinear convex combination of values in [0, 1] in float32: differs by rounding only (measured on
    # AMD 2.4e-7, 4 u); 1e-4 is loose on purpose, far below what a misaligned sampling grid gives (~1e-2 here).
    np.testing.assert_allclose(views_np.mask, views_torch.mask, atol=1e-4)
    for name in ("overlay", "mask_image", "preserved", "destroyed"):
        a, b = getattr(views_np, name), getattr(views_torch, name)
        assert a.shape == b.shape == frame.shape and a.dtype == b.dtype == np.uint8, name
        # rounding (< 1 level) + the blur kernels' details: measured on AMD 0.25 levels at most (8x margin)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0, name

    evidence_np = numpy_ops.evidence_input(image_np[0], mask_low, fill_np)
    evidence_torch = torch_ops.evidence_input(
        torch.from_numpy(image_np), torch.from_numpy(mask_low)[None, None], fill_torch
    )
    assert evidence_np.shape == evidence_torch.shape == (2, 3, SIZE, SIZE)
    assert np.abs(evidence_np - evidence_torch.numpy()).mean() < 0.01  # measured on AMD 9.8e-4 at most (10x)


@pytest.mark.parametrize("ops_kind", ["numpy", "torch"])
def test_phi_definition(frame: np.ndarray, ops_kind: str) -> None:
    """M = 1 keeps the frame; M = 0 replaces it by the fill (black: zeros, grey: 128)."""
    ones = np.ones((56, 56), np.float32)
    if ops_kind == "numpy":
        ops = HostCompositor(SIZE)
        small = ops.model_image(frame)
        full = ops.views(frame, ones, ops.fill_low(small, "black"), 0.5)
        empty = ops.views(frame, 0 * ones, ops.fill_low(small, "grey"), 0.0)
    else:
        torch_ops = TorchCompositor(SIZE, torch.device("cpu"))
        frames = torch_ops.upload([frame])
        images = torch_ops.model_input(frames)
        black, grey = torch_ops.fill_low(images, "black"), torch_ops.fill_low(images, "grey")
        (full,) = torch_ops.views(frames, torch.from_numpy(ones)[None, None], black, 0.5)
        (empty,) = torch_ops.views(frames, torch.zeros(1, 1, 56, 56), grey, 0.0)
    np.testing.assert_array_equal(full.preserved, frame)
    assert full.destroyed.max() == 0
    assert np.all(empty.preserved == 128) and np.array_equal(empty.destroyed, frame)
    np.testing.assert_array_equal(empty.overlay, frame)  # opacity 0: the frame alone
    assert np.all(full.mask_image == heat_lut()[255])


def test_blur_fill_is_a_strong_blur() -> None:
    """The blur fill keeps the mean colour and removes detail."""
    frame = np.random.default_rng(1).integers(0, 256, size=(120, 160, 3)).astype(np.uint8)
    ops = HostCompositor(SIZE)
    views = ops.views(frame, np.zeros((56, 56), np.float32), ops.fill_low(ops.model_image(frame), "blur"), 0.5)
    blurred = views.preserved.astype(float)  # M = 0: Phi(X, M) is the fill alone
    assert np.abs(blurred.mean((0, 1)) - frame.mean((0, 1))).max() < 12
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.1 * np.abs(np.diff(frame.astype(float), axis=1)).mean()


def test_views_are_made_at_the_size_they_are_shown() -> None:
    """fit_size: the frame's aspect ratio, as large as fits, never larger than the frame."""
    assert fit_size((1280, 720), (470, 350)) == (470, 264)
    assert fit_size((1280, 720), (2000, 2000)) == (1280, 720)  # never enlarged
    assert fit_size((640, 480), None) == (640, 480)
    assert fit_size((100, 2000), (300, 300)) == (15, 300)


def test_full_resolution_makes_the_live_views_again_at_the_frame_size(untrained_masker, blackbox, data_root) -> None:
    """What a snapshot saves: the views at full size from what a display-size explanation keeps: the same as explaining
    the frame at full size in the first place (the live path feeds the model the same input)."""
    import cv2

    from engine.api import Explainer

    capture = cv2.VideoCapture(str(data_root / "videos" / "box.mp4"))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", name="untrained") as explainer:
        small = explainer.explain(frame, 409, evidence=False, view_size=(320, 240))
        full = explainer.explain(frame, 409, evidence=False)
    assert small.mask.shape == (240, 320) and small.overlay.shape == (240, 320, 3)
    again = full_resolution(small)
    assert again.mask.shape == frame.shape[:2] and again.preserved.shape == frame.shape
    assert full_resolution(full) is full  # already full size
    np.testing.assert_array_equal(again.model_image, full.model_image)
    np.testing.assert_array_equal(again.mask, full.mask)
    for view in ("overlay", "mask_image", "preserved", "destroyed"):
        np.testing.assert_array_equal(getattr(again, view), getattr(full, view))
    assert again.box == full.box
