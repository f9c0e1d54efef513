"""The first seconds: the window's own clock of its first picture and first explained frame (app/startup.py)."""

from __future__ import annotations

from app.startup import StartupClock

WAIT_MS = 60_000  # a loaded 2-core machine can take seconds per frame on torch CPU


def test_the_clock_times_the_first_explained_frame_as_painted(qtbot, make_window, video_file):
    window = make_window(str(video_file))
    clock = StartupClock(window)
    with qtbot.waitSignal(clock.explained_painted, timeout=WAIT_MS):
        pass
    assert clock.first_picture_s is not None and clock.first_explained_s is not None
    assert clock.model_ready_s is not None
    assert 0 < clock.first_picture_s <= clock.first_explained_s
    assert clock.first_explained_index is not None
    summary = clock.summary()
    assert f"first explained frame painted {clock.first_explained_s:.2f} s" in summary
    assert f"(frame {clock.first_explained_index})" in summary
