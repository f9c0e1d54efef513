"""Record while live (app/export/recorder.py, app/export/recording.py): the recorder's times and queue headless, with
the real encoder; the real window recording what it shows; and the real app killed mid-recording, whose file must
still open and decode with PyAV."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from app.export.recorder import QUEUE_FRAMES, PlaybackTimes, Recorder
from engine.paths import DEMO_CLIP
from tests.app.conftest import decode_all

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000


def decoded(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of a video, RGB, and each one's time in frame periods (PyAV)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        period = 1 / stream.guessed_rate
        frames = list(container.decode(stream))
        return [frame.to_ndarray(format="rgb24") for frame in frames], [
            round(frame.pts * stream.time_base / period) for frame in frames
        ]


# -- times ----------------------------------------------------------------------------------------------------------
def test_a_file_s_frames_keep_the_source_s_pace_whatever_is_left_out():
    times = PlaybackTimes(30.0)
    period = 1 / 30
    assert times.time_of(100, 50.0) == 0
    assert times.time_of(101, 50.0 + period) == 1
    assert times.time_of(104, 50.0 + 4 * period) == 4  # three frames passed over: the time says so
    assert times.time_of(105, 50.0 + 4.2 * period) == 5  # shown a little early: still the next frame
    assert times.time_of(400, 50.0 + 6 * period) == 6  # a jump forward while playing: by the clock, not by 295 frames
    assert times.time_of(0, 50.0 + 7 * period) == 7  # the loop back to the start
    times.resume()  # after a pause of ten seconds: the pause is cut out
    assert times.time_of(1, 60.0) == 8 and times.time_of(2, 60.0 + period) == 9


def test_a_camera_s_frames_are_timed_by_the_clock_and_times_always_grow():
    times = PlaybackTimes(25.0)
    assert [times.time_of(None, at) for at in (3.0, 3.04, 3.12, 3.121, 3.2)] == [0, 1, 3, 4, 5]


# -- the recorder, headless, with the real encoder -------------------------------------------------------------------
def picture(number: int) -> np.ndarray:
    """A 64x48 picture that differs from frame to frame."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :] = (number * 9 % 256, 90, 200)
    image[10:30, number % 40 : number % 40 + 16] = 255
    return image


def test_the_live_loop_never_waits_and_what_the_encoder_cannot_take_is_left_out(tmp_path):
    gate = threading.Event()

    def render(number: int) -> np.ndarray:
        gate.wait()  # the encoder is "behind" until the gate opens
        return picture(number)

    recorder: Recorder[int] = Recorder(tmp_path / "rec.mp4", 30.0, render)
    period = 1 / 30
    accepted = [recorder.offer(number, number, number * period) for number in range(3 * QUEUE_FRAMES)]
    # the thread holds one picture (waiting in render) and the queue the next QUEUE_FRAMES; the rest were left out
    kept = accepted.count(True)
    assert kept in (QUEUE_FRAMES, QUEUE_FRAMES + 1) and accepted[:kept] == [True] * kept
    assert recorder.left_out == 3 * QUEUE_FRAMES - kept
    gate.set()
    outcome = recorder.finish()
    assert outcome.written == kept and outcome.left_out == 3 * QUEUE_FRAMES - kept and outcome.error == ""
    frames, times = decoded(outcome.path)
    assert len(frames) == kept and times == list(range(kept))  # each frame at its time, from 0
    assert len(decode_all(outcome.path)) == kept  # OpenCV (the app's reader) plays it too
    assert recorder.finish() is outcome  # idempotent


def test_frames_left_out_keep_their_place_in_time_and_a_resized_picture_is_scaled(tmp_path):
    sizes = {5: (100, 80)}  # the window was resized before frame 5

    def render(number: int) -> np.ndarray:
        image = picture(number)
        if number in sizes:
            import cv2

            image = cv2.resize(image, sizes[number])
        return image

    recorder: Recorder[int] = Recorder(tmp_path / "rec.mp4", 25.0, render)
    for number in (0, 1, 2, 5, 6, 9):  # frames 3, 4, 7, 8 passed over on screen
        assert recorder.offer(number, number, number / 25)
    outcome = recorder.finish()
    frames, times = decoded(outcome.path)
    assert times == [0, 1, 2, 5, 6, 9] and {frame.shape for frame in frames} == {(48, 64, 3)}
    assert outcome.seconds == pytest.approx(10 / 25)


def test_an_error_while_writing_stops_the_recording_in_one_line_and_the_live_loop_goes_on(tmp_path):
    def render(number: int) -> np.ndarray:
        if number == 3:
            raise OSError("No space left on device")
        return picture(number)

    recorder: Recorder[int] = Recorder(tmp_path / "rec.mp4", 25.0, render)
    for number in range(3 * QUEUE_FRAMES):
        recorder.offer(number, number, number / 25)  # never blocks, error or not
    outcome = recorder.finish()
    assert "No space left on device" in outcome.error and "\n" not in outcome.error
    assert outcome.written == 3 and len(decoded(outcome.path)[0]) == 3  # what was written plays


# -- the window records what it shows --------------------------------------------------------------------------------
def test_the_record_button_writes_what_was_shown_and_closing_the_window_finishes_the_file(qtbot, make_window, tmp_path):
    from PyQt6.QtCore import Qt

    from engine.runtime.views import composed_size

    window = make_window(str(DEMO_CLIP), evidence=True, loop=False, layout="grid", caption=True)
    qtbot.waitUntil(lambda: window.current_result is not None and window.current_result.explanation, timeout=WAIT_MS)
    on_screen = {}  # id of each explanation shown -> (it, its frame, what the evidence panel said with it)
    window.result_shown.connect(
        lambda result: on_screen.__setitem__(
            id(result.explanation), (result.explanation, result.frame_index, window.evidence.values())
        )
    )
    recording = window.recording
    rendered = []  # what the recorder's thread composed, in order
    compose_picture = recording._picture
    recording._picture = lambda shown: (rendered.append(shown), compose_picture(shown))[1]
    path = tmp_path / "live.mp4"
    recording._path = path  # (where Record writes: else a new file in the user's Videos folder)
    qtbot.mouseClick(window.view_controls.record_button, Qt.MouseButton.LeftButton)
    assert window.state.recording and window.menu_actions["record"].isChecked()
    qtbot.waitUntil(lambda: len(rendered) >= 12, timeout=WAIT_MS)
    assert window.status.recording_label.text().startswith("\u25cf REC")
    window.close()  # finishes the file
    outcome = recording.outcome
    assert outcome is not None and outcome.error == "" and outcome.path == path
    assert outcome.written == len(rendered) and outcome.written + outcome.left_out == recording.shown
    frames, times = decoded(path)
    assert len(frames) == outcome.written
    explanation = rendered[0].explanation
    width, height = composed_size((explanation.frame.shape[1], explanation.frame.shape[0]), "grid", recording._scale)
    assert frames[0].shape == (height + height % 2, width + width % 2, 3)
    indices = []
    for shown in rendered:  # the explanation shown, with the numbers the evidence panel showed beside it
        shown_explanation, index, bars = on_screen[id(shown.explanation)]
        assert shown.explanation is shown_explanation and shown.layout == "grid"
        indices.append(index)
        if bars["preserved"] == "\u2013":  # not checked yet for this class
            assert shown.caption == (explanation_name(shown), f"frame {bars['frame']}", "evidence checking...")
        else:
            numbers = f"frame {bars['frame']}  preserved {bars['preserved']}  destroyed {bars['destroyed']}"
            assert shown.caption[:2] == (explanation_name(shown), numbers)
            assert shown.caption[2].startswith("checked")
    # each frame at its source frame's place: consecutive frames one period apart, frames passed over on screen
    # absent (their time passes on the frame before), nothing repeated
    assert times[0] == 0 and times == sorted(set(times))
    for step, (before, after) in enumerate(zip(indices, indices[1:])):
        if after == before + 1:
            assert times[step + 1] == times[step] + 1


def explanation_name(shown) -> str:
    return shown.explanation.target_name


# -- the real app, killed mid-recording -------------------------------------------------------------------------------
def test_a_recording_cut_short_by_a_kill_still_plays_up_to_its_last_second(tmp_path):
    """The app records the demo clip (headless, looping, the bundled model) and is killed with SIGKILL, which no
    code can catch: the fragments written before must open and decode with PyAV."""
    path = tmp_path / "killed.mp4"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [sys.executable, str(ROOT / "run_app.py"), "--source", str(DEMO_CLIP), "--backend", "onnxruntime"]
    command += ["--no-evidence", "--benchmark-frames", "1000000", "--record", str(path)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300  # a limit for a stuck run, not a measurement
        while not _fragments(path) >= 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no fragment was written"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    frames, times = decoded(path)
    assert len(frames) >= 2 and times == sorted(set(times))  # decodable, in order
    assert all(frame.shape == frames[0].shape for frame in frames)


def _fragments(path: Path) -> int:
    """How many fragments (moof boxes) a fragmented MP4 holds so far."""
    if not path.exists():
        return 0
    return path.read_bytes().count(b"moof")
