"""Live sources for real: a clip served as a live MPEG-TS stream over UDP and TCP on 127.0.0.1 (paced in real time by
scripts/serve_stream.py's Sender), read by StreamSource through PyAV; a camera whose capture stops and comes back.

No timing goals: the bounds are generous functional ones (a queue of old pictures would be seconds behind, a
blocked open would never answer)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from app.playback.frames import Backoff
from app.playback.live_ahead import LiveAhead
from app.playback.sources import CameraSource, open_source
from app.playback.stream import ARRIVAL_CLOCK, SENDER_CLOCK, ReaderLag, StreamSource
from engine.errors import VideoError
from engine.paths import ASSETS
from tests.app.conftest import write_video
from tests.app.live_stream import SERVE, SERVE_SCRIPT, LiveStream, free_port, send_garbage

CLIP = ASSETS / "demo" / "box-720p.mp4"
NOT_BEHIND_S = 1.5  # a picture read after seconds of a slow reader is still this recent (a queue: seconds behind)
WAIT_S = 60.0  # generous: a busy 2-core machine


@pytest.fixture(scope="module")
def clips():
    """The 720p clip's first 45 frames at 640x360, and at 320x180 (a stream that changes its size)."""
    return SERVE.encode_clip(CLIP, (640, 360), limit=45), SERVE.encode_clip(CLIP, (320, 180), limit=45)


@pytest.fixture
def udp_stream(clips):
    stream = LiveStream(f"udp://127.0.0.1:{free_port()}", [clips[0]])
    yield stream
    stream.stop()


def wait_for(condition, timeout: float = WAIT_S, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def read_frame(source, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = source.read()
        if frame is not None:
            return frame
    raise AssertionError(f"no picture from {source.label} in {timeout:.0f} s")


def test_a_udp_stream_keeps_to_the_live_edge_for_a_slow_reader(udp_stream) -> None:
    udp_stream.start()
    source = open_source(udp_stream.url)
    try:
        assert isinstance(source, StreamSource) and source.kind == "stream" and source.live
        assert source.live_clock == SENDER_CLOCK  # serve_stream.py stamps its wall clock
        frame = read_frame(source)
        assert frame.image.shape == (360, 640, 3) and frame.index is None and frame.live_at is not None
        behind = []
        for _ in range(12):  # a reader far slower than the stream: 3 s for 12 pictures of the 90 sent meanwhile
            time.sleep(0.25)
            frame = read_frame(source)
            assert frame.live_at is not None
            behind.append(time.perf_counter() - frame.live_at)
        assert max(behind) < NOT_BEHIND_S, behind  # the newest picture each time, never a backlog
        assert source.dropped > 0  # the pictures nobody took were replaced, and counted
    finally:
        source.close()


def test_the_stream_survives_its_sender_stopping_and_starting_again(udp_stream) -> None:
    udp_stream.start()
    source = StreamSource(udp_stream.url, read_timeout=1.0)
    try:
        read_frame(source)
        udp_stream.stop()
        notices: list[str] = []
        assert wait_for(lambda: _collect(source, notices) and any("reconnecting" in n for n in notices)), notices
        while source.read() is not None:  # the last picture sent, if nobody took it yet
            pass
        assert source.read() is None  # nothing new: the picture on screen stays
        udp_stream.start()
        assert wait_for(lambda: _collect(source, notices) and any("is back" in n for n in notices)), notices
        restarted = time.perf_counter()
        frame = read_frame(source)
        while frame.live_at is not None and frame.live_at < restarted:  # (a picture decoded just before)
            frame = read_frame(source)
        assert source.reconnects == 1
    finally:
        source.close()


def _collect(source, notices: list[str]) -> bool:
    while (notice := source.take_notice()) is not None:
        notices.append(notice)
    return True


def test_a_stream_over_tcp_and_a_refused_connection() -> None:
    port = free_port(socket.SOCK_STREAM)
    command = [sys.executable, str(SERVE_SCRIPT), str(CLIP), "--tcp", f"127.0.0.1:{port}", "--size", "640x360"]
    # a process of its own: PyAV's TCP listener holds Python's lock while it waits for a receiver
    server = subprocess.Popen([*command, "--frames", "45"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and "serving" in server.stdout.readline()
        source = _open_when_listening(f"tcp://127.0.0.1:{port}")
        try:
            assert read_frame(source).image.shape == (360, 640, 3)
        finally:
            source.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    started = time.monotonic()
    with pytest.raises(VideoError, match="refused the connection") as refused:
        StreamSource(f"tcp://127.0.0.1:{free_port(socket.SOCK_STREAM)}")
    assert "\n" not in str(refused.value) and time.monotonic() - started < WAIT_S


def _open_when_listening(url: str) -> StreamSource:
    """The sender's thread listens a moment after it starts."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return StreamSource(url)
        except VideoError as error:
            if "refused" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_url_that_never_answers_is_one_line_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(VideoError, match=r"sent nothing for 1\.5 s") as silent:
        StreamSource(f"udp://127.0.0.1:{free_port()}", open_timeout=1.5)
    assert "\n" not in str(silent.value)
    assert 1.0 < time.monotonic() - started < WAIT_S


def test_garbage_on_the_socket_is_one_line_at_open_and_passed_over_mid_stream(clips) -> None:
    port = free_port()
    stop = threading.Event()

    def blast() -> None:
        while not stop.is_set():
            send_garbage(port, 20)
            time.sleep(0.02)

    noise = threading.Thread(target=blast, daemon=True)
    noise.start()
    try:
        with pytest.raises(VideoError) as garbage:
            StreamSource(f"udp://127.0.0.1:{port}", open_timeout=2.0)
        assert "\n" not in str(garbage.value)
    finally:
        stop.set()
        noise.join()
    stream = LiveStream(f"udp://127.0.0.1:{port}", [clips[0]]).start()
    try:
        source = StreamSource(stream.url)
        try:
            read_frame(source)
            send_garbage(port, 200, seed=3)  # mid-stream
            shown_after = 0
            for _ in range(20):
                read_frame(source)
                shown_after += 1
            assert shown_after == 20
        finally:
            source.close()
    finally:
        stream.stop()


def test_a_stream_that_changes_its_picture_size_says_so(clips) -> None:
    stream = LiveStream(f"udp://127.0.0.1:{free_port()}", list(clips), switch_after=30)
    stream.start()
    try:
        source = StreamSource(stream.url)
        try:
            sizes: set[tuple[int, ...]] = set()
            notices: list[str] = []
            deadline = time.monotonic() + WAIT_S
            while (len(sizes) < 2 or not notices) and time.monotonic() < deadline:
                frame = source.read()
                if frame is not None:
                    sizes.add(frame.image.shape)
                _collect(source, notices)
            assert sizes == {(360, 640, 3), (180, 320, 3)}  # each picture at the size it was sent
            assert any("changed its picture size from" in notice for notice in notices), notices
        finally:
            source.close()
    finally:
        stream.stop()


def test_a_camera_that_stops_is_opened_again_and_resumes(tmp_path) -> None:
    """A capture that fails (a webcam unplugged: here a file that ends and is gone) is tried again with backoff;
    when the device is back, the pictures are too."""
    device = write_video(tmp_path / "device.avi", 12, fourcc="MJPG")
    content = device.read_bytes()
    camera = CameraSource(str(device), max_failures=3)
    try:
        assert camera.live_clock.startswith("the moment the capture handed")
        device.unlink()  # unplugged: the capture reads to its end, and opening it again fails
        notices: list[str] = []
        frame = read_frame(camera)
        assert frame.live_at == frame.captured_at
        assert wait_for(lambda: _collect(camera, notices) and any("stopped sending" in n for n in notices))
        while camera.read() is not None:  # the last picture, if not taken yet
            pass
        assert camera.lost and camera.read() is None and camera.reconnects == 0
        device.write_bytes(content)  # plugged in again
        assert wait_for(lambda: _collect(camera, notices) and any("is back" in n for n in notices)), notices
        assert read_frame(camera).image.shape == (64, 96, 3) and camera.reconnects == 1
    finally:
        camera.close()


def test_backoff_waits_half_a_second_then_doubles_up_to_five() -> None:
    backoff = Backoff()
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_live_ahead_prepares_the_newest_picture_beside_the_pipeline(udp_stream) -> None:
    udp_stream.start()
    source = StreamSource(udp_stream.url)
    ahead = LiveAhead(source)
    try:
        ahead.set_prepare(lambda image: image.shape)
        frame = read_frame(ahead)
        while frame.prepared_with != ahead.prepare_generation:  # (one made before the preparation was set)
            frame = read_frame(ahead)
        assert frame.prepared == (360, 640, 3)
        assert ahead.position is None
        time.sleep(0.2)  # a pause: the picture made ready meanwhile is thrown away when playing again
        dropped = source.dropped
        ahead.drop_ready()
        assert source.dropped in (dropped, dropped + 1)
        assert read_frame(ahead).live_at is not None
    finally:
        ahead.close()
        source.close()


def test_an_unstamped_stream_counts_from_the_arrival(clips, monkeypatch) -> None:
    monkeypatch.setattr(SERVE, "WALLCLOCK_PID", 0x0100)  # a stream like any other camera server's
    stream = LiveStream(f"udp://127.0.0.1:{free_port()}", [clips[0]]).start()
    try:
        source = StreamSource(stream.url)
        try:
            assert source.live_clock == ARRIVAL_CLOCK
            frame = read_frame(source)
            assert frame.live_at is not None and frame.live_at <= frame.captured_at
        finally:
            source.close()
    finally:
        stream.stop()


def test_a_reader_slower_than_the_stream_catches_up_instead_of_falling_behind(clips, monkeypatch) -> None:
    """A starved core: every picture takes the reader 0.1 s (10 a second of the 30 sent). Without catching up the
    packets would wait in FFmpeg's and the system's buffers, the backlog growing by 2 s every 3 s."""
    publish = StreamSource._publish

    def slow_publish(self, picture, stamped, waited) -> None:
        time.sleep(0.1)
        publish(self, picture, stamped, waited)

    monkeypatch.setattr(StreamSource, "_publish", slow_publish)
    stream = LiveStream(f"udp://127.0.0.1:{free_port()}", [clips[0]]).start()
    try:
        source = StreamSource(stream.url)
        try:
            read_frame(source)
            behind = []
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline:
                time.sleep(0.25)
                frame = source.read()
                if frame is not None and frame.live_at is not None:
                    behind.append(time.perf_counter() - frame.live_at)
            assert source.caught_up > 0 and source.dropped > 0
            assert behind and max(behind[len(behind) // 2 :]) < 3.0, behind  # 8 s in: no growing backlog
            assert any("fell behind" in (note or "") for note in iter(source.take_notice, None))
        finally:
            source.close()
    finally:
        stream.stop()


def test_the_readers_lag_counts_from_the_packets_read_soonest_and_starts_afresh_on_a_new_timeline() -> None:
    lag = ReaderLag()
    assert lag.behind_s(100.0, 5.0) == 0.0  # the first: read as soon as it came, as far as anyone knows
    assert lag.behind_s(100.5, 5.5) == 0.0  # in time
    assert lag.behind_s(101.0, 7.0) == pytest.approx(1.0)  # read 1 s later than in time: it waited in a buffer
    assert lag.behind_s(101.5, 6.0) == 0.0  # sooner than any: the new measure of "in time"
    assert lag.behind_s(0.0, 8.0) == 0.0  # timestamps from 0 again (a sender restarted): not 100 s behind
