"""Steady explanations over time (engine.runtime.temporal): the class held in "auto", the mask average."""

from __future__ import annotations

import numpy as np
import pytest

from engine.runtime.temporal import MaskSmoother, Steadiness, SteadyClass


def ranked(*pairs: tuple[int, float]) -> list[tuple[int, str, float]]:
    """A black box's ranking of a frame, best first: (class, name, probability)."""
    return [(index, f"class {index}", probability) for index, probability in pairs]


def test_the_first_frame_takes_the_top_class_and_a_close_rival_never_takes_over() -> None:
    holder = SteadyClass(margin=0.1, hold=2)
    assert holder.held is None
    assert holder.update(ranked((3, 0.40), (7, 0.35))) == 3
    for _ in range(10):  # 7 leads on every frame, but by less than the margin
        assert holder.update(ranked((7, 0.42), (3, 0.35))) == 3


def test_a_clear_lead_must_last_hold_frames_in_a_row() -> None:
    holder = SteadyClass(margin=0.1, hold=3)
    holder.update(ranked((3, 0.6), (7, 0.2)))
    clear = ranked((7, 0.6), (3, 0.2))
    assert [holder.update(clear) for _ in range(2)] == [3, 3]
    assert holder.update(ranked((3, 0.5), (7, 0.3))) == 3  # the run of clear leads is broken
    assert [holder.update(clear) for _ in range(3)] == [3, 3, 7]  # three in a row: the change comes on the third
    assert holder.held == 7


def test_the_class_that_led_most_over_the_run_is_taken() -> None:
    holder = SteadyClass(margin=0.1, hold=3)
    holder.update(
        ranked(
            (3, 0.5),
        )
    )
    # 3 is clearly led on three frames in a row, by 7 twice and by 9 once: 7 led most
    frames = [ranked((7, 0.5), (3, 0.2)), ranked((9, 0.6), (3, 0.2)), ranked((7, 0.5), (9, 0.3), (3, 0.1))]
    assert [holder.update(frame) for frame in frames] == [3, 3, 7]


def test_a_held_class_out_of_the_top_five_counts_as_clearly_led() -> None:
    holder = SteadyClass(margin=0.5, hold=2)
    holder.update(ranked((3, 0.3), (4, 0.2)))
    flat = ranked((8, 0.12), (9, 0.11), (10, 0.1), (11, 0.1), (12, 0.09))  # nothing leads by 0.5, 3 is gone
    assert [holder.update(flat) for _ in range(2)] == [3, 8]


def test_margin_zero_and_hold_one_is_plain_auto_and_reset_forgets() -> None:
    tops = [3, 3, 7, 3, 9, 9, 7]
    holder = SteadyClass(margin=0.0, hold=1)
    assert [holder.update(ranked((top, 0.5), (99, 0.1))) for top in tops] == tops
    holder.reset()
    assert holder.held is None and holder.update(ranked((42, 0.3))) == 42


@pytest.mark.parametrize(("margin", "hold"), [(-0.1, 3), (1.5, 3), (0.1, 0)])
def test_bad_hysteresis_settings_are_refused(margin: float, hold: int) -> None:
    with pytest.raises(ValueError, match="margin|hold"):
        SteadyClass(margin, hold)
    with pytest.raises(ValueError, match="margin|hold"):
        Steadiness(margin=margin, hold=hold)


def test_the_average_follows_its_formula_and_alpha_one_is_off() -> None:
    masks = [np.full((4, 5), value, np.float32) for value in (0.0, 1.0, 1.0, 0.0)]
    smoother = MaskSmoother(alpha=0.5)
    shown = [float(smoother.update(mask, key=1)[0, 0]) for mask in masks]
    assert shown == [0.0, 0.5, 0.75, 0.375]
    off = MaskSmoother(alpha=1.0)
    for mask in masks:
        assert np.array_equal(off.update(mask, key=1), mask)


def test_the_average_starts_afresh_on_another_class_another_size_and_reset() -> None:
    smoother = MaskSmoother(alpha=0.25)
    smoother.update(np.zeros((4, 4), np.float32), key=1)
    ones = np.ones((4, 4), np.float32)
    assert smoother.update(ones, key=1)[0, 0] == pytest.approx(0.25)
    assert np.array_equal(smoother.update(ones * 0.5, key=2), ones * 0.5)  # another class
    assert np.array_equal(smoother.update(np.zeros((2, 2), np.float32), key=2), np.zeros((2, 2)))  # another size
    smoother.reset()
    assert np.array_equal(smoother.update(ones, key=2), ones)


def test_the_delay_of_the_average_is_the_step_response_s() -> None:
    """(1 - alpha) / alpha frames: the mean lag of the average's response to a sudden change, measured here."""
    for alpha in (0.7, 0.5, 0.3):
        smoother = MaskSmoother(alpha)
        smoother.update(np.zeros(1, np.float32))
        response = np.array([smoother.update(np.ones(1, np.float32))[0] for _ in range(200)])
        arrivals = np.diff(np.concatenate([[0.0], response]))  # the share of the step that arrives on each frame
        assert float((arrivals * np.arange(200)).sum()) == pytest.approx(smoother.mean_delay, abs=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        MaskSmoother(0.0)
    with pytest.raises(ValueError, match="alpha"):
        Steadiness(smooth=1.5)


def test_the_settings_make_their_objects() -> None:
    assert Steadiness(steady_class=False).class_holder() is None
    holder = Steadiness(margin=0.2, hold=4).class_holder()
    assert holder is not None and (holder.margin, holder.hold) == (0.2, 4)
    assert Steadiness(smooth=1.0).mask_smoother() is None
    smoother = Steadiness(smooth=0.4).mask_smoother()
    assert smoother is not None and smoother.alpha == 0.4
