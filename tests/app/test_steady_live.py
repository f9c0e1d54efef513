"""Steady "auto" and the smoothed mask in the live loop (issue 14, point 3): the Scheduler on a real model (the
untrained test model on torch CPU) against the engine's own SteadyClass and MaskSmoother on the same frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.explaining.mailbox import ExplainParams, ModelSpec
from app.explaining.scheduler import Scheduler
from app.playback.sources import Frame
from engine.contract import AUTO
from engine.runtime.temporal import SMOOTH_ALPHA, SteadyClass
from tests.app.test_scheduler import FakeSource, Recorder, started

TABBY = 281


class TwoPictures(FakeSource):
    """Frames that alternate between two real pictures (a box and a cup): plain "auto" changes class on each."""

    def __init__(self, pictures: list[np.ndarray], count: int = 12) -> None:
        super().__init__(count=count, fps=25.0, label="two pictures")
        self.pictures = pictures

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            return None
        return Frame(self.pictures[frame.index % 2], frame.index, 0.0)


@pytest.fixture(scope="module")
def pictures(data_root: Path) -> list[np.ndarray]:
    found = []
    for name in ("box.mp4", "cup.mp4"):
        capture = cv2.VideoCapture(str(data_root / "videos" / name))
        ok, bgr = capture.read()
        capture.release()
        assert ok
        found.append(cv2.cvtColor(cv2.resize(bgr, (160, 120)), cv2.COLOR_BGR2RGB))
    return found


def playing(source: FakeSource, params: ExplainParams, model: Path) -> tuple[Scheduler, Recorder]:
    """A scheduler with the untrained model loaded, on the first frame of `source`, paused."""
    scheduler, recorder, _ = started(source, realtime=False)
    scheduler.set_params(params)
    scheduler.load_model(ModelSpec(str(model), "torch-cpu"))
    scheduler.set_playing(False)
    scheduler.step()
    assert scheduler.explainer is not None, recorder.said("model_failed")
    return scheduler, recorder


def play(scheduler: Scheduler, frames: int) -> list:
    """The explanations of the next `frames` playback frames, in order."""
    scheduler.set_playing(True)
    shown = []
    for _ in range(frames):
        scheduler.step()
        result = scheduler.take_result()
        assert result is not None and result.explanation is not None
        shown.append(result)
    return shown


def test_the_mask_is_averaged_over_playback_frames_and_starts_afresh_on_a_seek(untrained_model_file, pictures):
    params = ExplainParams(target=TABBY, evidence=False, steady_class=True, smooth_mask=True)
    scheduler, _ = playing(TwoPictures(pictures), params, untrained_model_file)
    explainer = scheduler.explainer
    assert explainer is not None
    # the untrained black box gives tabby far less than the gate (engine.runtime.gate), which would empty every mask:
    # this test is about the average over time, so it looks at the masks themselves
    explainer.gate = 0.0
    scheduler.seek(0)
    scheduler.step()
    first = scheduler.take_result()
    assert first is not None and first.explanation is not None
    shown = [first, *play(scheduler, 3)]
    raw = [explainer.explain(result.frame, TABBY, evidence=False).mask_low for result in shown]
    assert not np.allclose(raw[0], raw[1], atol=1e-3), "the two pictures give the same mask: nothing to average"
    expected = raw[0]
    assert np.allclose(shown[0].explanation.mask_low, expected, atol=1e-5)  # a seek starts afresh
    for result, mask in zip(shown[1:], raw[1:], strict=True):
        expected = expected + SMOOTH_ALPHA * (mask - expected)
        assert np.allclose(result.explanation.mask_low, expected, atol=1e-4)
    scheduler.seek(1)
    scheduler.step()
    again = scheduler.take_result()
    assert again is not None and again.explanation is not None
    assert np.allclose(again.explanation.mask_low, raw[1], atol=1e-5), "a seek did not start the average afresh"

    scheduler.set_params(ExplainParams(target=TABBY, evidence=False, smooth_mask=False))
    scheduler.step()  # explained again, without the average
    plain = play(scheduler, 2)
    for result in plain:
        expected_raw = explainer.explain(result.frame, TABBY, evidence=False).mask_low
        assert np.allclose(result.explanation.mask_low, expected_raw, atol=1e-5)
    scheduler.close()


def test_auto_holds_its_class_while_the_top_prediction_flickers(untrained_model_file, pictures):
    params = ExplainParams(target=AUTO, evidence=False, steady_class=True, smooth_mask=False)
    scheduler, _ = playing(TwoPictures(pictures), params, untrained_model_file)
    explainer = scheduler.explainer
    assert explainer is not None
    scheduler.seek(0)
    scheduler.step()
    first = scheduler.take_result()
    assert first is not None and first.explanation is not None
    shown = [first, *play(scheduler, 6)]
    rankings = [explainer.explain(result.frame, AUTO, evidence=False).top5 for result in shown]
    plain = [ranking[0][0] for ranking in rankings]
    assert len(set(plain)) == 2, f"the two pictures should have different top-1 classes: {plain}"
    holder = SteadyClass()
    expected = [holder.update(ranking) for ranking in rankings]
    assert [result.explanation.target for result in shown] == expected
    assert len(set(expected)) < len(set(plain)) or expected != plain  # the hysteresis changed what is shown

    scheduler.set_params(ExplainParams(target=AUTO, evidence=False, steady_class=False, smooth_mask=False))
    scheduler.step()
    flickering = play(scheduler, 2)
    assert [result.explanation.target for result in flickering] == [
        explainer.explain(result.frame, AUTO, evidence=False).top5[0][0] for result in flickering
    ]
    scheduler.close()


def test_the_view_menu_switches_both_and_they_are_remembered(qtbot, make_window, store, video_file, tmp_path):
    from app.settings import load_state
    from app.state import AppState

    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    steady, smooth = window.menu_actions["steady_class"], window.menu_actions["smooth_mask"]
    assert steady.isCheckable() and steady.isChecked() and smooth.isChecked()  # on by default (measured)
    assert window.controller.params().steady_class and window.controller.params().smooth_mask
    smooth.trigger()
    assert not window.state.smooth_mask and not window.controller.params().smooth_mask
    steady.trigger()
    assert not window.state.steady_class and not window.controller.params().steady_class
    window.state.update(steady_class=True)  # the menu follows the state too
    assert steady.isChecked()
    window.close()
    restored = AppState()
    assert load_state(store, restored) == []
    assert restored.steady_class and not restored.smooth_mask


def test_each_result_says_how_its_run_went_and_a_step_forward_goes_on_as_playback(untrained_model_file, pictures):
    from app.explaining.results import Played

    params = ExplainParams(target=AUTO, evidence=False)  # steady class and mask average on, as by default
    scheduler, _ = playing(TwoPictures(pictures, count=12), params, untrained_model_file)
    scheduler.seek(0)
    scheduler.step()
    first = scheduler.take_result()
    shown = [first, *play(scheduler, 3)]
    assert [result.played for result in shown] == [Played(0)] * 4  # in order from the first frame: as exported
    assert all(result.played.as_exported() for result in shown)
    scheduler.set_playing(False)
    scheduler.seek(7)  # a jump: explained alone
    scheduler.step()
    jumped = scheduler.take_result()
    assert jumped.frame_index == 7 and jumped.played == Played(7) and "alone" in jumped.played.note(7)
    scheduler.seek(8)  # the next frame: the average goes on from frame 7
    scheduler.step()
    stepped = scheduler.take_result()
    assert stepped.frame_index == 8 and stepped.played == Played(7)
    assert stepped.played.note(8) == "averaged from frame 7 on (after a jump), not from the first frame"
    scheduler.close()
    late = Played(0, passed_over=3)  # playback fell behind and passed over three frames since the start
    assert not late.as_exported() and "3 frames passed over" in late.note(20)
    assert Played(5, steady=False).as_exported()  # nothing averaged, no class held: any frame is as exported
