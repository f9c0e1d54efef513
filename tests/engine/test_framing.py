"""engine.runtime.framing through the Explainer: a region cut out of the frame, a wide picture padded or stretched."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import Explainer, full_resolution
from engine.runtime.framing import clip_region, crop, pad_square
from engine.tolerances import FP16_MAX_MEAN_ABS, FP16_MIN_IOU, FP32_LOGITS_RTOL, mask_iou


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", name="untrained") as explainer:
        yield explainer


@pytest.fixture(scope="module")
def wide_frame(data_root) -> np.ndarray:
    from engine.video.reader import VideoReader

    with VideoReader(data_root / "videos" / "vtest.avi") as reader:  # 768x576, people and cars in a street
        frame = reader.read()
    assert frame is not None
    return frame


def test_regions_are_clipped_to_the_frame_and_tiny_ones_refused() -> None:
    assert clip_region((-20, 10, 50, 700), (100, 80)) == (0, 10, 50, 80)
    assert clip_region((60, 40, 10, 5), (100, 80)) == (10, 5, 60, 40)  # any corner order
    assert clip_region((10, 10, 14, 60), (100, 80)) is None  # 4 pixels wide: a click
    frame = np.arange(80 * 100 * 3, dtype=np.uint8).reshape(80, 100, 3)
    assert np.array_equal(crop(frame, (10, 5, 60, 40)), frame[5:40, 10:60])


def test_padding_centres_the_picture_in_the_fill_colour() -> None:
    picture = np.full((30, 90, 3), 200, np.uint8)
    square, content = pad_square(picture, "black")
    assert square.shape == (90, 90, 3) and content == (0, 30, 90, 60)
    assert np.array_equal(square[30:60], picture) and not square[:30].any() and not square[60:].any()
    assert pad_square(np.zeros((40, 40, 3), np.uint8), "grey")[1] is None  # square already


@pytest.mark.parametrize("aspect", ["pad", "stretch"])
def test_a_region_is_explained_alone_and_shown_at_its_own_aspect(explainer, wide_frame, aspect) -> None:
    region = (300, 100, 420, 400)  # 120 x 300: tall
    explanation = explainer.explain(wide_frame, region=region, aspect=aspect, evidence=True)
    assert np.array_equal(explanation.frame, wide_frame[100:400, 300:420])
    for view in ("overlay", "mask_image", "preserved", "destroyed"):
        assert getattr(explanation, view).shape == (300, 120, 3)
    assert explanation.mask.shape == (300, 120) and explanation.model_image.shape == (224, 224, 3)
    assert explanation.padded == (aspect == "pad")
    if aspect == "pad":  # the model saw the region between two bands of the blur's colour (the region's mean)
        mean = wide_frame[100:400, 300:420].reshape(-1, 3).mean(axis=0)
        assert np.abs(explanation.model_image[112, 2].astype(float) - mean).max() <= 2
    # the evidence check made later, from what the explanation keeps, is the one made with it
    assert explainer.evidence(explanation) == pytest.approx(explanation.probabilities, abs=1e-5)


def test_padded_views_shown_small_are_the_full_size_ones_scaled(explainer, wide_frame) -> None:
    """The live pipeline makes the views at the size shown; a snapshot makes them again at full size: on a padded
    picture both are cut from the same square, so they agree."""
    import cv2

    small = explainer.explain(wide_frame, aspect="pad", view_size=(384, 384), evidence=False)
    assert small.mask.shape == (288, 384)  # the frame's 4:3, as large as fits
    full = full_resolution(small)
    assert full.mask.shape == (576, 768) and full.overlay.shape == (576, 768, 3)
    again = explainer.explain(wide_frame, aspect="pad", evidence=False)
    assert np.abs(full.mask - again.mask).max() < 1e-5
    shrunk = cv2.resize(full.mask, (384, 288), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk - small.mask).mean() < 0.01


def test_stretch_and_pad_differ_on_a_wide_frame_and_agree_on_a_square_one(explainer, wide_frame) -> None:
    stretched = explainer.explain(wide_frame, aspect="stretch", evidence=False)
    padded = explainer.explain(wide_frame, aspect="pad", evidence=False)
    assert not np.array_equal(stretched.model_image, padded.model_image)
    square = wide_frame[:576, :576]
    assert np.array_equal(
        explainer.explain(square, aspect="stretch").mask, explainer.explain(square, aspect="pad").mask
    )
    with pytest.raises(ValueError, match="aspect"):
        explainer.explain(wide_frame, aspect="squash")


def test_a_batch_pads_as_one_frame_does(explainer, wide_frame) -> None:
    """engine.video.sequence (render, the app's timeline pass) explains in batches: padded, the same as one at a
    time."""
    one = explainer.explain(wide_frame, aspect="pad", evidence=True)
    batch = explainer.explain_batch([wide_frame, wide_frame], [one.target] * 2, aspect="pad", evidence=True)
    # A batch of two runs other kernel blockings than one frame: float32 rounding, which the mask ratio magnifies
    # where both head channels are small (engine.tolerances), so the masks are compared as a user sees them (the
    # FP16 gates, far looser than FP32 rounding). The probabilities move by at most 2 max|dz| <= 2 * 1e-4 * max|z|
    # (FP32_LOGITS_RTOL; max|z| < 50 for these black boxes): 1e-2.
    for explanation in batch:
        assert explanation.mask.shape == wide_frame.shape[:2]
        assert mask_iou(explanation.mask, one.mask) > FP16_MIN_IOU
        assert np.abs(explanation.mask - one.mask).mean() < FP16_MAX_MEAN_ABS
        assert explanation.probabilities == pytest.approx(one.probabilities, abs=2 * FP32_LOGITS_RTOL * 50)
