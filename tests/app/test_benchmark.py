"""The --benchmark-frames watchdog: loading a model is not a stall (a first GPU run exports the model and builds
TensorRT plans for minutes); once the model is ready, 180 s without an explained frame is. Time is a counter here."""

from __future__ import annotations

from app.benchmark import LOAD_SECONDS, STALL_SECONDS, Watchdog, live_edge_summary


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_model_loading_does_not_count_as_a_stall() -> None:
    clock = Clock()
    watchdog = Watchdog(clock=clock)
    watchdog.model_loading()
    clock.now += STALL_SECONDS + 600  # an FP16 export and two TensorRT plan builds
    assert watchdog.verdict() is None
    watchdog.model_ready()  # the count starts here
    clock.now += STALL_SECONDS - 1
    assert watchdog.verdict() is None
    watchdog.frame_explained()
    clock.now += STALL_SECONDS + 1
    assert watchdog.verdict() == f"no explained frame for {STALL_SECONDS:.0f} s"


def test_a_load_that_never_ends_still_stops_the_benchmark() -> None:
    clock = Clock()
    watchdog = Watchdog(clock=clock)
    watchdog.model_loading()
    clock.now += LOAD_SECONDS + 1
    assert watchdog.verdict() == f"the model did not load in {LOAD_SECONDS:.0f} s"


def test_no_model_and_no_frame_is_a_stall() -> None:
    clock = Clock()
    watchdog = Watchdog(stall_seconds=5, clock=clock)
    clock.now += 6
    assert watchdog.verdict() == "no explained frame for 5 s"


def test_the_live_edge_summary_gives_percentiles_and_a_median_per_minute() -> None:
    behind = [(second * 0.5, 50.0 + (second % 10)) for second in range(240)]  # 2 minutes, 50..59 ms
    behind.append((119.9, 400.0))  # one late picture
    summary = live_edge_summary(behind)
    assert summary.startswith("behind the live edge: median 55 ms, 95th 59 ms, worst 400 ms")
    assert summary.endswith("per minute (median, ms): 54, 55")
