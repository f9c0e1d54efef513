"""AppState without Qt: validation, change notification, the player's arithmetic, settings values."""

import pytest

from app.explaining.stats import RateMeter
from app.state import AppState
from engine.contract import AUTO


def test_update_notifies_only_real_changes():
    state = AppState()
    heard = []
    unsubscribe = state.subscribe(heard.append)
    assert state.update(fill="grey", opacity=0.5) == {"fill"}  # opacity was already 0.5
    state.update(fill="grey")
    assert heard == [{"fill"}]
    unsubscribe()
    state.update(fill="black")
    assert heard == [{"fill"}]


@pytest.mark.parametrize(
    "changes", [{"fill": "pink"}, {"layout": "sideways"}, {"backend": "cuda-magic"}, {"target": -3}, {"nope": 1}]
)
def test_invalid_values_are_refused(changes):
    state = AppState()
    with pytest.raises((ValueError, AttributeError)):
        state.update(**changes)


def test_opacity_is_clamped_and_target_auto_is_the_contracts_auto():
    state = AppState()
    state.update(opacity=1.7)
    assert state.opacity == 1.0
    assert state.target == AUTO
    state.update(target=281)
    assert state.target == 281
    state.update(target=AUTO)
    assert state.target == AUTO
    for wrong in ("281", 281.0, None, True):
        with pytest.raises((TypeError, ValueError)):
            state.update(target=wrong)


def test_player_steps_wrap_when_looping_and_stop_at_the_ends_otherwise():
    state = AppState(source_kind="video", frame_count=10, frame_index=9, fps=25.0)
    assert state.seekable
    assert state.stepped(+1) == 0
    state.update(loop=False)
    assert state.stepped(+1) == 9
    state.update(frame_index=0)
    assert state.stepped(-1) == 0
    assert state.position_text() == "frame 0 / 9   0:00.00 / 0:00.40"


def test_camera_is_live_not_seekable():
    state = AppState(source_kind="camera", source_label="camera 0", frame_count=None)
    assert not state.seekable
    assert state.position_text() == "live: camera 0"


def test_settings_round_trip_through_strings_and_bad_values_are_skipped():
    state = AppState()
    state.update(target=281, layout="mask", fill="grey", opacity=0.25, show_box=True, loop=False)
    stored = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in state.to_settings().items()
    }  # what an INI file gives back
    restored = AppState()
    assert restored.apply_settings(stored) == []
    assert restored.to_settings() == state.to_settings()
    assert AppState().apply_settings({"fill": "pink", "opacity": "x", "target": "281"}) == ["fill", "opacity"]


def test_settings_of_the_previous_version_still_load():
    """It wrote the target as "auto" or as an index in text (an INI file gives text back)."""
    for stored, target in (("auto", AUTO), ("281", 281), ("", AUTO), ("-1", AUTO), (7, 7)):
        state = AppState(target=5)
        assert state.apply_settings({"target": stored}) == []
        assert state.target == target
    assert AppState(target=5).apply_settings({"target": "tabby"}) == ["target"]
    assert AppState(target=AUTO).to_settings()["target"] == "auto"  # readable by the previous version too


def test_rate_meter_counts_events_per_second_in_its_window():
    meter = RateMeter(window=1.0)
    for tick in range(11):
        meter.tick(100.0 + tick * 0.1)  # 10 per second
    # float64 arithmetic on exact times: a few ulps, far within pytest.approx's rel 1e-6 (here and below)
    assert meter.rate(now=101.0) == pytest.approx(10.0)
    assert meter.rate(now=101.5) == pytest.approx(10.0)  # one event left in the window: the last interval
    assert meter.rate(now=120.0) == 0.0  # nothing for a long time


def test_rate_meter_shows_slow_rates_instead_of_zero():
    meter = RateMeter(window=2.0)
    meter.tick(10.0)
    meter.tick(13.0)  # one frame every 3 s
    assert meter.rate(now=13.5) == pytest.approx(1 / 3)
