"""A video's frames explained in order (engine.video.sequence): the class held in "auto", the smoothed mask, on a real
clip with the real black box (its rankings are what the hysteresis works on) and an untrained masker."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import Explainer
from engine.contract import AUTO, Explanation
from engine.runtime.temporal import MaskSmoother, Steadiness
from engine.video.reader import VideoReader
from engine.video.sequence import SequenceExplainer
from engine.video.steadiness import replay, switches_per_100

BATCH = 4


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    # no gate: the smoothing test explains a class the black box hardly sees (the gate: test_gate.py)
    with Explainer.from_masker(
        untrained_masker, blackbox, "onnxruntime", batch_sizes=(1, BATCH), gate=0.0
    ) as explainer:
        yield explainer


@pytest.fixture(scope="module")
def frames(data_root) -> list[np.ndarray]:
    with VideoReader(data_root / "videos" / "realshort.mp4") as reader:
        return list(reader)[:24]


def explain_all(sequence: SequenceExplainer, frames: list[np.ndarray]) -> list[Explanation]:
    return [e for start in range(0, len(frames), BATCH) for e in sequence.explain(frames[start : start + BATCH])]


@pytest.fixture(scope="module")
def plain(explainer, frames) -> list[Explanation]:
    settings = Steadiness(steady_class=False, smooth=1.0)
    return explain_all(SequenceExplainer(explainer, AUTO, settings, evidence=False), frames)


def test_plain_auto_explains_each_frame_s_top_class(plain) -> None:
    assert [e.target for e in plain] == [e.top5[0][0] for e in plain]
    assert switches_per_100([e.target for e in plain]) > 0  # this clip's top-1 does change (else nothing is tested)


def test_steady_auto_explains_the_held_class_and_explains_a_batch_again_after_a_change(explainer, frames, plain):
    settings = Steadiness(margin=0.0, hold=2, smooth=1.0)
    expected = replay([e.top5 for e in plain], settings.margin, settings.hold)
    assert 0 < switches_per_100(expected) < switches_per_100([e.target for e in plain])
    sequence = SequenceExplainer(explainer, AUTO, settings, evidence=False)
    steady = explain_all(sequence, frames)
    assert [e.target for e in steady] == expected
    assert sequence.frames_explained_again > 0
    for index in np.flatnonzero(np.array(expected) != np.array([e.target for e in plain]))[:3]:
        alone = explainer.explain(frames[index], int(expected[index]), evidence=False)  # the held class's mask
        assert np.abs(steady[index].mask - alone.mask).max() < 1e-4
    sequence.reset()
    assert sequence.run.holder is not None and sequence.run.holder.held is None


def test_smoothed_masks_are_the_average_of_the_masks_and_the_evidence_is_theirs(explainer, frames) -> None:
    target = 409
    raw = explain_all(SequenceExplainer(explainer, target, Steadiness(smooth=1.0)), frames[:8])
    smoothed = explain_all(SequenceExplainer(explainer, target, Steadiness(smooth=0.5)), frames[:8])
    average = MaskSmoother(0.5)
    for before, after in zip(raw, smoothed):
        # averaging the low-resolution masks then upsampling = averaging the upsampled masks (bilinear is linear)
        assert np.abs(after.mask - average.update(before.mask, target)).max() < 1e-5
    assert np.array_equal(smoothed[0].mask, raw[0].mask)  # the first frame has no past
    assert smoothed[0].probabilities == pytest.approx(raw[0].probabilities, abs=1e-6)
    later = [(a.probabilities, b.probabilities) for a, b in zip(raw[1:], smoothed[1:])]
    assert any(abs(a["preserved"] - b["preserved"]) > 1e-4 for a, b in later if a and b)  # of the shown mask
    assert not any(np.array_equal(a.preserved, b.preserved) for a, b in zip(raw[2:4], smoothed[2:4]))


def test_the_average_starts_afresh_where_plain_auto_changes_class(explainer, frames, plain) -> None:
    smoothed = explain_all(
        SequenceExplainer(explainer, AUTO, Steadiness(steady_class=False, smooth=0.3), evidence=False), frames
    )
    assert [e.target for e in smoothed] == [e.target for e in plain]
    changes = [i for i in range(1, len(plain)) if plain[i].target != plain[i - 1].target]
    assert changes
    for index in changes:
        assert np.abs(smoothed[index].mask - plain[index].mask).max() < 1e-5
