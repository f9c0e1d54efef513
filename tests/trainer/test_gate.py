"""The gate's price and gain, from per-image rows and weak-class cases."""

from __future__ import annotations

import pytest

from trainer.studies.gate import gated_errors, weak_figures, weak_pass_share


def test_gated_errors_by_hand():
    rows = [
        {"file": "a", "probability": 0.9, "hit_paper": 1, "hit_mean": 1},
        {"file": "b", "probability": 0.004, "hit_paper": 1, "hit_mean": 0},  # gated at 0.005: mask emptied
        {"file": "c", "probability": 0.002, "hit_paper": 0, "hit_mean": 0},
        {"file": "d", "probability": 0.5, "hit_paper": 0, "hit_mean": 1},
    ]
    whole = {"a": False, "b": True, "c": False, "d": False}  # b's object fills the image: the whole box hits
    assert gated_errors(rows, whole, 0.0) == (50.0, 50.0)
    paper, mean = gated_errors(rows, whole, 0.005)
    assert paper == 75.0  # b's hit is lost
    assert mean == 25.0  # b's emptied mask is the whole image in the mean protocol, and that box hits


def test_weak_pass_share():
    cases = [
        {"passes": 1, "probability": 0.008},
        {"passes": 0, "probability": 0.004},  # emptied by a gate at 0.005
        {"passes": 0, "probability": 0.02},
    ]
    assert weak_pass_share(cases, 0.0) == pytest.approx(1 / 3)
    assert weak_pass_share(cases, 0.005) == pytest.approx(2 / 3)


def test_weak_figures_per_case_and_frame():
    cases = [
        {"source": "v", "item": "0", "passes": 0, "probability": 0.004, "mask_mean": 0.1, "mask_max": 0.9},
        {"source": "v", "item": "0", "passes": 1, "probability": 0.008, "mask_mean": 0.01, "mask_max": 0.2},
        {"source": "v", "item": "5", "passes": 0, "probability": 0.009, "mask_mean": 0.05, "mask_max": 0.6},
    ]
    share, mean_mask, frames = weak_figures(cases, 0.005)
    assert share == pytest.approx(2 / 3)
    assert mean_mask == pytest.approx((0.0 + 0.01 + 0.05) / 3)  # the gated case counts as an empty mask
    assert frames == 0.5  # frame 0 is clean once gated, frame 5 keeps its blob
