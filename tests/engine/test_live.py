"""The live pipeline's helpers (engine.runtime.live): the evidence stream and work done ahead, on real explanations."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.api import Explainer
from engine.contract import AUTO, Evidence
from engine.runtime.live import EvidenceStream, run_ahead


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", name="untrained") as explainer:
        yield explainer


@pytest.fixture(scope="module")
def explanations(explainer, data_root) -> list:
    import cv2

    capture = cv2.VideoCapture(str(data_root / "videos" / "box.mp4"))
    frames = []
    for _ in range(3):
        ok, bgr = capture.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return [explainer.explain(frame, AUTO, evidence=True, view_size=(320, 240)) for frame in frames]


def test_the_stream_checks_what_the_offline_path_checks(explainer, explanations) -> None:
    """The live check, made later from what an explanation keeps, gives the numbers the offline path gives at once."""
    ready: list[Evidence] = []
    with EvidenceStream(explainer.evidence, on_ready=ready.append) as stream:
        stream.offer(explanations[0], frame_index=7, frame_time=1.5, tag="source 1")
        assert stream.idle(timeout=30)
    (evidence,) = ready
    assert stream.latest() == evidence and stream.computed == 1
    assert (evidence.frame_index, evidence.frame_time, evidence.tag) == (7, 1.5, "source 1")
    assert evidence.target == explanations[0].target and evidence.check_ms > 0
    assert evidence.probabilities == pytest.approx(explanations[0].probabilities, abs=1e-6)


def test_the_newest_offer_wins_and_checks_are_spaced(explanations) -> None:
    """While a check runs, newer offers replace older ones: only the newest is checked next, and not before
    `interval` seconds after the previous check began."""
    started: list[tuple[float, int]] = []
    release = threading.Event()

    def compute(explanation) -> dict[str, float]:
        started.append((time.perf_counter(), explanation.target))
        release.wait(timeout=10)
        return {"frame": 1.0, "preserved": 1.0, "destroyed": 0.0}

    with EvidenceStream(compute, interval=0.3) as stream:
        stream.offer(explanations[0], frame_index=0, frame_time=0.0)
        while not started:
            time.sleep(0.005)
        stream.offer(explanations[1], frame_index=1, frame_time=0.0)
        stream.offer(explanations[2], frame_index=2, frame_time=0.0)  # replaces frame 1, never checked
        release.set()
        assert stream.idle(timeout=10)
        latest = stream.latest()
    assert latest is not None and latest.frame_index == 2 and stream.computed == 2
    assert len(started) == 2 and started[1][0] - started[0][0] >= 0.3 - 0.01


def test_clear_drops_what_belonged_to_the_old_source(explanations) -> None:
    release = threading.Event()
    ready: list[Evidence] = []

    def compute(explanation) -> dict[str, float]:
        release.wait(timeout=10)
        return {"frame": 1.0, "preserved": 1.0, "destroyed": 0.0}

    with EvidenceStream(compute, on_ready=ready.append) as stream:
        stream.offer(explanations[0], frame_index=0, frame_time=0.0)
        time.sleep(0.05)  # the check has started
        stream.clear()  # another source opened meanwhile
        release.set()
        assert stream.idle(timeout=10)
        assert stream.latest() is None and ready == []


def test_an_error_in_a_check_is_reported_and_the_stream_goes_on(explanations) -> None:
    errors: list[BaseException] = []
    calls = iter([RuntimeError("the runtime failed"), {"frame": 0.5, "preserved": 0.5, "destroyed": 0.1}])

    def compute(explanation) -> dict[str, float]:
        result = next(calls)
        if isinstance(result, BaseException):
            raise result
        return result

    with EvidenceStream(compute, interval=0.0, on_error=errors.append) as stream:
        stream.offer(explanations[0], frame_index=0, frame_time=0.0)
        assert stream.idle(timeout=10)
        stream.offer(explanations[1], frame_index=1, frame_time=0.0)
        assert stream.idle(timeout=10)
        latest = stream.latest()
    assert [str(error) for error in errors] == ["the runtime failed"]
    assert latest is not None and latest.frame_index == 1


def test_run_ahead_keeps_order_and_raises_where_the_item_is_asked_for() -> None:
    assert list(run_ahead(iter(range(20)), lambda n: n * n, depth=3)) == [n * n for n in range(20)]

    def failing(n: int) -> int:
        if n == 5:
            raise ValueError("frame 5 is damaged")
        return n

    seen = []
    with pytest.raises(ValueError, match="damaged"):
        for item in run_ahead(iter(range(10)), failing):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_run_ahead_stops_its_thread_when_the_consumer_stops() -> None:
    before = set(threading.enumerate())
    items = run_ahead(iter(range(10_000)), lambda n: np.zeros(10) + n, depth=2)
    assert next(items)[0] == 0
    started = [thread for thread in threading.enumerate() if thread not in before]
    assert started  # its own thread (threads of earlier tests may end meanwhile: they are not counted)
    items.close()  # (a `break` does the same)
    deadline = time.perf_counter() + 5
    while any(thread.is_alive() for thread in started) and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert not any(thread.is_alive() for thread in started)
