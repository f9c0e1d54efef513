"""The gate's price and gain, from per-image rows and weak-class cases."""

from __future__ import annotations

import pytest

from trainer.gate import gated_errors, weak_pass_share


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
