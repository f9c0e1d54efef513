"""The first seconds: the window's own clock of its first picture and first explained frame (app/startup.py)."""

from __future__ import annotations

import threading

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


def test_a_file_waits_on_its_first_frame_marked_until_the_model_is_ready(
    qtbot, store, video_file, untrained_model_file
):
    """The model loads (held here until the test lets it go) while the window shows the file's first frame with the
    note; then the file plays explained from that frame on, whatever time the load took."""
    from app.explaining.loading import ModelLoad, build_explainer
    from app.explaining.mailbox import ExplainParams, ModelSpec
    from app.explaining.worker import PipelineWorker
    from app.state import AppState
    from app.widgets.view_grid import PREPARING
    from app.window import MainWindow

    gate = threading.Event()

    def slow_build(spec: ModelSpec, params: ExplainParams):
        assert gate.wait(120)
        return build_explainer(spec, params)

    state = AppState(model_path=str(untrained_model_file), backend="torch-cpu", evidence=False)
    preload = ModelLoad(ModelSpec.of(state), ExplainParams.of(state), slow_build)
    window = MainWindow(state, store, PipelineWorker(preload=preload))
    qtbot.addWidget(window)
    shown: list[tuple[int | None, bool]] = []
    window.result_shown.connect(lambda result: shown.append((result.frame_index, result.explanation is not None)))
    window.show()
    window.start(str(video_file))
    try:
        qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)
        qtbot.wait(1000)  # a second of the file's clock (25 frames) passes while the model loads
        assert set(shown) == {(0, False)}  # (shown again when the views' size settles)
        assert window.grid.views["overlay"].note == PREPARING and window.grid.views["mask"].placeholder == PREPARING
    finally:
        gate.set()
    qtbot.waitUntil(lambda: sum(explained for _, explained in shown) >= 3, timeout=WAIT_MS)
    explained = [index for index, done in shown if done]
    assert explained[0] == 0 and explained == sorted(explained)  # from the first frame on, in order
    assert window.grid.views["overlay"].note == ""
    window.close()
    assert window.worker.isFinished()
