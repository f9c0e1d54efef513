"""engine.runtime.gate: the mask of a class the black box does not see is emptied; AUTO (the top-1) never is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Explainer
from engine.contract import AUTO
from engine.runtime.gate import GATE, check_gate, closed


def test_closed_by_hand() -> None:
    probabilities = np.array([[0.001, 0.999], [0.6, 0.4], [0.0005, 0.9995]])
    # asked for class 0 (0.001 < 0.002: shut), class 1 (0.4: open), AUTO (top-1 never shut, however low the gate)
    assert closed(probabilities, [0, 1, AUTO], [0, 1, 1], 0.002).tolist() == [True, False, False]
    assert closed(probabilities, [0, 1, AUTO], [0, 1, 1], 0.0).tolist() == [False, False, False]
    assert closed(probabilities, [0, 1, AUTO], [0, 1, 1], 0.5).tolist() == [True, True, False]


def test_check_gate() -> None:
    assert check_gate(0) == 0.0 and check_gate(GATE) == GATE
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match="gate"):
            check_gate(bad)


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", name="untrained") as explainer:
        yield explainer


@pytest.fixture(scope="module")
def frame(data_root) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(data_root / "videos" / "vtest.avi"))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_the_explainer_empties_the_mask_of_an_unseen_class(explainer: Explainer, blackbox, frame) -> None:
    assert explainer.gate == GATE  # the default: the app's Explainer (engine.api) gates without being asked
    seen = explainer.explain(frame, AUTO, evidence=False)
    image = torch.from_numpy(seen.model_image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        probabilities = torch.softmax(blackbox(image).float(), dim=1)[0].numpy()
    unseen = int(probabilities.argmin())
    assert probabilities[unseen] < GATE

    gated = explainer.explain(frame, unseen, evidence=False)
    assert gated.target == unseen and gated.target_probability < GATE
    assert gated.mask.max() == 0 and gated.mask_low.max() == 0 and gated.box is None
    assert np.array_equal(gated.destroyed, gated.frame)  # nothing removed: the destroyed view is the frame

    prepared = explainer.prepare(frame)
    ungated = explainer.pipeline.run([prepared], [unseen], evidence=False, gate=0.0)[0]
    assert ungated.mask_low.max() > 0  # the untrained masker draws something: the gate is what emptied it

    top = seen.target  # the top-1: by index it is shut by a gate above its probability, as AUTO never
    by_index, auto = explainer.pipeline.run([prepared, prepared], [top, AUTO], evidence=False, gate=0.999)
    assert by_index.mask_low.max() == 0 and auto.target == top and auto.mask_low.max() > 0
