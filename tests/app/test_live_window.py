"""The window on a real live stream (a clip served over UDP on 127.0.0.1 in real time): it shows how far behind the
live edge it is and stays there, keeps its picture while the sender is away and resumes on its own; a URL that never
answers is one line while the window's event loop keeps turning. Generous functional bounds only."""

from __future__ import annotations

import re
import time

import pytest
from PyQt6.QtCore import QTimer

from app.explaining.stats import LiveEdgeMeter
from engine.paths import ASSETS
from tests.app.live_stream import SERVE, LiveStream, free_port

WAIT_MS = 60_000
NOT_BEHIND_MS = 1500  # a queue of old pictures would be seconds behind after a few seconds


@pytest.fixture(scope="module")
def clip():
    return SERVE.encode_clip(ASSETS / "demo" / "box-720p.mp4", limit=60)  # 1280x720, as a webcam server sends it


def test_a_live_stream_is_shown_at_the_live_edge_and_survives_its_sender_going_away(qtbot, make_window, clip, tmp_path):
    stream = LiveStream(f"udp://127.0.0.1:{free_port()}", [clip]).start()
    try:
        window = make_window(stream.url, model=tmp_path / "absent.safetensors")
        qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
        assert window.state.source_kind == "stream" and window.state.position_text().startswith("live: udp://")
        label = window.status.live_label
        assert not label.isHidden() and "sender's wall clock" in label.toolTip()
        qtbot.waitUntil(lambda: re.fullmatch(r"behind live \d+ ms", label.text()) is not None, timeout=WAIT_MS)
        shown_before = window.shown.total
        qtbot.waitUntil(lambda: window.shown.total >= shown_before + 60, timeout=WAIT_MS)  # 2 s of the stream or more
        behind = window.live_edge.median_ms()
        assert behind is not None and behind < NOT_BEHIND_MS

        stream.stop()
        problems = len(window.problems)
        log = window.status.log
        qtbot.waitUntil(lambda: any("reconnecting" in line for line in log), timeout=WAIT_MS)
        kept = window.current_result
        assert kept is not None and window.state.source_kind == "stream"  # the last picture stays
        assert not [text for text in window.problems[problems:] if "udp://" in text]  # a note, not an error
        # the number says how old the kept picture is now, not the delay the pictures before it had
        qtbot.waitUntil(lambda: _shown_behind_ms(label.text()) > 1000, timeout=WAIT_MS)

        restarted = time.perf_counter()
        stream.start()
        qtbot.waitUntil(lambda: any("is back" in line for line in log), timeout=WAIT_MS)
        result = lambda: window.current_result  # noqa: E731
        qtbot.waitUntil(lambda: (result().live_at or 0) > restarted, timeout=WAIT_MS)  # resumed on its own
    finally:
        stream.stop()


def test_a_url_that_never_answers_is_one_line_and_the_window_stays_responsive(qtbot, make_window, video_file, tmp_path):
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.current_result is not None, timeout=WAIT_MS)
    ticks: list[float] = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(50)
    problems = len(window.problems)
    window.open_source(f"udp://127.0.0.1:{free_port()}")  # nobody sends there
    # (the absent model's failure may come in meanwhile: it loads in a thread of its own)
    about_the_url = lambda: [text for text in window.problems[problems:] if text.startswith("udp://")]  # noqa: E731
    qtbot.waitUntil(lambda: about_the_url() != [], timeout=WAIT_MS)
    timer.stop()
    said = about_the_url()[0]
    assert re.match(r"udp://127\.0\.0\.1:\d+ sent nothing for 5 s", said) and "\n" not in said.split("\n\n")[0]
    # the event loop kept turning while the pipeline's thread waited the 5 s (a blocked window: one gap of 5 s)
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 20 and max(gaps) < 3.0
    assert window.state.source_label == "clip.mp4"  # what played before goes on


def _shown_behind_ms(text: str) -> float:
    """The status bar's "behind live 57 ms" / "behind live 12 s", in ms (-1 for "behind live -")."""
    match = re.fullmatch(r"behind live (\d+) (ms|s)", text)
    return -1.0 if match is None else float(match.group(1)) * (1 if match.group(2) == "ms" else 1000)


def test_behind_live_is_the_median_while_pictures_come_and_the_kept_pictures_age_once_they_stop() -> None:
    meter = LiveEdgeMeter(window=3)
    assert meter.behind_now_ms(10.0) is None
    for live_at, shown_at in ((10.00, 10.05), (10.03, 10.10), (10.06, 10.12)):
        meter.record(live_at, shown_at)
    assert meter.median_ms() == pytest.approx(60.0)
    assert meter.behind_now_ms(10.15) == pytest.approx(60.0)  # a picture every 30 ms: the median of the last ones
    assert meter.behind_now_ms(12.06) == pytest.approx(2000.0)  # none for 2 s: the picture on screen is 2 s old
    meter.reset()
    assert meter.behind_now_ms(12.06) is None
