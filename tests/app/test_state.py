"""AppState without Qt: validation, change notification, the player's arithmetic, settings values."""

import pytest

from app.state import FILLS, VIEWS, AppState
from app.stats import RateMeter


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


def test_opacity_is_clamped_and_target_auto_is_none():
    state = AppState()
    state.update(opacity=1.7)
    assert state.opacity == 1.0
    assert state.target_request == "auto"
    state.update(target=281)
    assert state.target_request == 281


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
        name: ("auto" if value is None else str(value).lower() if isinstance(value, bool) else str(value))
        for name, value in state.to_settings().items()
    }  # what an INI file gives back
    restored = AppState()
    assert restored.apply_settings(stored) == []
    assert restored.to_settings() == state.to_settings()
    assert AppState().apply_settings({"fill": "pink", "opacity": "x", "target": "281"}) == ["fill", "opacity"]


def test_view_and_fill_names_match_the_engine():
    from engine.api import FILLS as ENGINE_FILLS
    from engine.api import VIEWS as ENGINE_VIEWS

    assert (FILLS, VIEWS) == (ENGINE_FILLS, ENGINE_VIEWS)


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
