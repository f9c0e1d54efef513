"""Cameras by name without opening them, a camera's size and frame rate, streams by address (issue: the Camera menu).

There is no camera on the test machines: the menu is tested on a /sys/class/video4linux tree built in tmp_path (and
its device nodes, which are plain files there: not V4L2 devices), a camera's requested mode on OpenCV reading a
video file as its "camera" (it ignores the request, and the source must say so), a stream on a video served over
HTTP from this process.
"""

from __future__ import annotations

import errno
import functools
import http.server
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMenu

from app import recent
from app.playback import v4l2
from app.playback.sources import CameraSource, open_source
from app.settings import load_state, save_state
from app.source_specs import CameraMode, CameraSpec, describe, parse_camera, stream_problem
from app.state import AppState
from app.widgets import camera_menu
from app.widgets.stream_dialog import StreamDialog
from engine.errors import VideoError
from tests.app.conftest import write_video

WAIT_MS = 60_000


# -- the spec: --source, Recent and the session keep a camera and its mode as text -----------------------------------
def test_a_camera_and_its_mode_as_text_and_back() -> None:
    spec = CameraSpec(0, CameraMode(1280, 720, 30.0))
    assert str(spec) == "camera:0@1280x720:30" and parse_camera(str(spec)) == spec
    assert parse_camera("camera:2@640x480:7.5") == CameraSpec(2, CameraMode(640, 480, 7.5))
    assert parse_camera("camera:1@640x480") == CameraSpec(1, CameraMode(640, 480))
    assert parse_camera("3") == parse_camera("camera:3") == CameraSpec(3)
    assert parse_camera("clip.mp4") is None and parse_camera("rtsp://host/x") is None
    assert describe("camera:0@1280x720:30") == "Camera 0, 1280x720 at 30 fps"
    for bad in ("camera:", "camera:0@1280", "camera:0@1280x720:", "camera:x", "camera:0@0x720:30"):
        with pytest.raises(ValueError) as error:
            parse_camera(bad)
        assert "\n" not in str(error.value) and "camera" in str(error.value)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("rtsp://192.168.1.20:554/stream", None),
        ("udp://@:5000", None),
        ("tcp://10.0.0.2:5000", None),
        ("https://example.org/live.m3u8", None),
        ("", "Type a stream address"),
        ("192.168.1.20/stream", "starts with udp://, tcp://, rtsp://, http:// or https://"),
        ("ftp://host/clip.mp4", "ftp:// is not a stream this app opens"),
        ("rtsp://host/with space", "no spaces"),
        ("udp://239.0.0.1", "udp:// needs a port"),
        ("rtsp://:554/stream", "rtsp:// names no host"),
        ("tcp://host:99999", "the port must be a number"),
    ],
)
def test_a_stream_address_is_checked_for_its_form(address: str, problem: str | None) -> None:
    found = stream_problem(address)
    assert (found is None) if problem is None else (found is not None and problem in found and "\n" not in found)


# -- /sys/class/video4linux: names, capture nodes only, no device started ---------------------------------------------
@pytest.fixture
def video4linux(tmp_path: Path) -> tuple[Path, Path]:
    """A /sys/class/video4linux like a laptop's with a USB webcam: the webcam's picture node and its metadata node,
    the built-in camera, a sub-device; /dev with plain files (not V4L2 devices) for two of them."""
    root, dev = tmp_path / "sys", tmp_path / "dev"
    for name, label, index in (
        ("video0", "HD Pro Webcam C920", "0"),
        ("video1", "HD Pro Webcam C920", "1"),  # its metadata: no pictures
        ("video2", "Integrated Camera: Integrated C", "0"),
        ("v4l-subdev0", "a sensor", None),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "name").write_text(label + "\n")
        if index is not None:
            (root / name / "index").write_text(index + "\n")
    dev.mkdir()
    (dev / "video0").write_bytes(b"")
    (dev / "video1").write_bytes(b"")
    return root, dev


def test_cameras_are_listed_by_name_from_sys(video4linux) -> None:
    root, dev = video4linux
    cameras = v4l2.list_cameras(root, dev)
    assert [(camera.index, camera.name) for camera in cameras] == [
        (0, "HD Pro Webcam C920"),
        (2, "Integrated Camera: Integrated C"),
    ]
    assert cameras[0].title == "HD Pro Webcam C920 (video0)"
    assert "not a V4L2 device" in cameras[0].problem and "does not exist" in cameras[1].problem
    modes, note = v4l2.camera_modes(cameras[0])  # its node cannot be asked: common sizes, said so
    assert modes == list(v4l2.COMMON_MODES) and note.startswith("common sizes") and "not a V4L2 device" in note
    assert v4l2.list_cameras(root / "absent", dev) == []


def test_the_capture_nodes_are_told_by_their_capabilities(video4linux, monkeypatch) -> None:
    """VIDIOC_QUERYCAP answered as the drivers do (struct v4l2_capability: capabilities at 84, device_caps at 88):
    the webcam's picture node is a camera; its metadata node, a codec (memory to memory) and an old codec that says
    capture and output are not."""
    root, dev = video4linux
    for name, label in (("video3", "bcm2835-codec-decode"), ("video4", "old-codec")):
        (root / name).mkdir()
        (root / name / "name").write_text(label)
        (dev / name).write_bytes(b"")
    (dev / "video2").write_bytes(b"")
    device_caps = {"video0": 0x04000001, "video1": 0x04800000, "video2": 0x04000001, "video3": 0x04008000}
    device_caps["video4"] = 0x04000003
    opened: dict[int, str] = {}
    real_open = os.open

    def watched_open(path: Path, flags: int) -> int:
        assert flags & os.O_NONBLOCK and not flags & (os.O_WRONLY | os.O_RDWR)
        fd = real_open(path, flags)
        opened[fd] = Path(path).name
        return fd

    def driver(fd: int, request: int, buffer: bytearray) -> None:
        assert request == v4l2.VIDIOC_QUERYCAP and len(buffer) == 104
        struct.pack_into("=II", buffer, 84, 0x84A00001 | v4l2.CAP_DEVICE_CAPS, device_caps[opened[fd]])

    monkeypatch.setattr(os, "open", watched_open)  # each node opened read-only and non-blocking, and which it is
    cameras = v4l2.list_cameras(root, dev, driver)
    assert [(camera.index, camera.problem) for camera in cameras] == [(0, ""), (2, "")]


def test_a_cameras_modes_from_the_v4l2_enumeration(tmp_path) -> None:
    """The enumeration ioctls answered as a UVC webcam's driver does (layouts of <linux/videodev2.h>): two formats,
    discrete sizes and intervals; the end of each list is EINVAL. Every mode once, largest and fastest first."""
    node = tmp_path / "video0"
    node.write_bytes(b"")
    yuyv, mjpg = (int.from_bytes(code.encode(), "little") for code in ("YUYV", "MJPG"))
    table = {
        yuyv: {(640, 480): [(1, 30), (1, 15)], (1280, 720): [(1, 10)]},
        mjpg: {(1280, 720): [(1, 30)], (640, 480): [(1, 30)], (1920, 1080): [(1001, 30000)]},
    }

    def driver(_fd: int, request: int, buffer: bytearray) -> None:
        if request == v4l2.VIDIOC_ENUM_FMT:
            index, kind = struct.unpack_from("=II", buffer, 0)
            assert kind == v4l2.BUF_TYPE_VIDEO_CAPTURE and len(buffer) == 64
            _answer(index, list(table), lambda code: struct.pack_into("=I", buffer, 44, code))
        elif request == v4l2.VIDIOC_ENUM_FRAMESIZES:
            index, code = struct.unpack_from("=II", buffer, 0)
            assert len(buffer) == 44
            _answer(index, list(table[code]), lambda size: struct.pack_into("=III", buffer, 8, v4l2.DISCRETE, *size))
        elif request == v4l2.VIDIOC_ENUM_FRAMEINTERVALS:
            index, code, width, height = struct.unpack_from("=IIII", buffer, 0)
            assert len(buffer) == 52
            rates = table[code][(width, height)]
            _answer(index, rates, lambda rate: struct.pack_into("=III", buffer, 16, v4l2.DISCRETE, *rate))
        else:
            raise OSError(errno.ENOTTY, "not this ioctl")

    modes, note = v4l2.camera_modes(v4l2.Camera(0, "webcam", node), driver)
    assert note == ""
    assert [str(mode) for mode in modes] == [
        "1920x1080 at 29.97 fps",
        "1280x720 at 30 fps",
        "1280x720 at 10 fps",
        "640x480 at 30 fps",
        "640x480 at 15 fps",
    ]


def _answer(index: int, entries: list, fill) -> None:
    if index >= len(entries):
        raise OSError(errno.EINVAL, "no more")
    fill(entries[index])


def test_the_camera_menu_names_the_cameras_and_opens_one_in_a_mode(qapp, video4linux) -> None:
    root, dev = video4linux
    state = AppState(source_kind="camera", source_spec="camera:2@1280x720:30")
    opened: list[str] = []
    menu = QMenu()
    camera_menu.fill(menu, state, opened.append, camera_menu.list_cameras(root, dev))
    titles = [action.text() for action in menu.actions()]
    assert titles == ["HD Pro Webcam C920 (video0)", "Integrated Camera: Integrated C (video2) (open now)"]
    integrated = menu.actions()[1].menu()
    assert integrated is not None
    integrated.aboutToShow.emit()  # its modes are read when its submenu opens
    entries = {action.text(): action for action in integrated.actions() if action.text()}
    assert list(entries)[:2] == [f"{dev / 'video2'} does not exist", "Its default mode"]
    assert "1280x720 at 30 fps" in entries and entries["1280x720 at 30 fps"].isChecked()
    assert not entries["Its default mode"].isChecked()
    common = next(action for text, action in entries.items() if text.startswith("Common sizes"))
    assert common.toolTip().startswith("common sizes: the camera's own could not be read") and not common.isEnabled()
    entries["640x480 at 30 fps"].trigger()
    entries["Its default mode"].trigger()
    assert opened == ["camera:2@640x480:30", "camera:2"]

    menu.clear()
    camera_menu.fill(menu, state, opened.append, camera_menu.list_cameras(root / "absent", dev))
    assert [action.text() for action in menu.actions()][0] == "No camera found"
    assert not menu.actions()[1].isEnabled() and "does not exist" in menu.actions()[1].text()


def test_the_windows_camera_menu_opens_no_camera_to_list_them(qtbot, make_window, video_file, video4linux, monkeypatch):
    """The window's Camera menu on the built tree, without opening any capture to list them."""
    root, dev = video4linux
    monkeypatch.setattr(v4l2, "SYS_ROOT", root)
    monkeypatch.setattr(v4l2, "DEV_ROOT", dev)
    window = make_window(str(video_file), model=Path("absent.safetensors"))
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)

    real_capture = cv2.VideoCapture
    opened_here: list[object] = []  # captures opened by the GUI thread (the file's own threads may open theirs)

    def watched(*args: object) -> object:
        if threading.current_thread() is threading.main_thread():
            opened_here.append(args)
        return real_capture(*args)

    monkeypatch.setattr(cv2, "VideoCapture", watched)
    menu = next(m for m in window.menuBar().findChildren(QMenu) if m.title() == "&Camera")
    menu.aboutToShow.emit()
    assert [action.text() for action in menu.actions()] == [
        "HD Pro Webcam C920 (video0)",
        "Integrated Camera: Integrated C (video2)",
    ]
    webcam = menu.actions()[0].menu()
    assert webcam is not None
    webcam.aboutToShow.emit()
    assert "1920x1080 at 30 fps" in [action.text() for action in webcam.actions()]
    assert opened_here == []


# -- a camera's mode: asked for, and what it gives said honestly -------------------------------------------------
def test_a_camera_asked_for_a_mode_says_what_it_gives(tmp_path) -> None:
    device = write_video(tmp_path / "device.avi", 200, fourcc="MJPG")  # OpenCV's "camera" reading a file: 96x64, 25
    asked = CameraMode(1280, 720, 30.0)
    camera = CameraSource(str(device), mode=asked)
    try:
        frame = camera.read()
        assert frame.image.shape == (64, 96, 3)  # the file ignores the request ...
        # ... and the source says so, with what it gives
        assert (
            camera.mode_note
            == f"{device} gives 96x64 at 25 fps, not the 1280x720 at 30 fps asked for (the nearest it offers)"
        )
    finally:
        camera.close()
    matching = CameraSource(str(device), mode=CameraMode(96, 64, 25.0))
    plain = CameraSource(str(device))
    try:
        assert matching.mode_note == f"{device} gives 96x64 at 25 fps, as asked"
        assert plain.mode_note == "" and plain.spec == str(device)
    finally:
        matching.close()
        plain.close()


def test_a_camera_spec_that_opens_nothing_is_a_clear_error() -> None:
    with pytest.raises(VideoError, match=r"write camera:INDEX\[@WIDTHxHEIGHT\[:FPS\]\]"):
        open_source("camera:0@1280")
    with pytest.raises(VideoError, match="camera 9 did not open"):
        open_source("camera:9@640x480:30")


def test_a_chosen_camera_and_mode_go_to_recent_and_the_next_session(qtbot, make_window, store, video_file, tmp_path):
    """A camera opened in a mode (OpenCV's file "camera" standing in for camera 5): remembered in Recent and as the
    session's camera (the next start without --source tries it first: the test after this one)."""
    device = write_video(tmp_path / "device.avi", 200, fourcc="MJPG")
    window = make_window(str(video_file), model=tmp_path / "absent.safetensors")
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)
    camera = CameraSource(str(device), mode=CameraMode(1280, 720, 30.0))
    camera.spec = "camera:5@1280x720:30"
    window.open_source(camera)
    qtbot.waitUntil(lambda: window.state.last_camera == "camera:5@1280x720:30", timeout=WAIT_MS)
    assert recent.recent_files(store)[0] == "camera:5@1280x720:30"
    assert any("gives 96x64 at 25 fps, not the 1280x720 at 30 fps asked for" in text for text in window.status.recent)
    recent_menu = window.menu_actions["recent"].menu()
    assert recent_menu is not None
    recent_menu.aboutToShow.emit()
    entry = recent_menu.actions()[0]
    assert entry.text() == "&1 Camera 5, 1280x720 at 30 fps" and entry.data() == "camera:5@1280x720:30"
    assert str(Path(video_file).resolve()) in recent.recent_files(store)  # the file before it stays, as a file

    save_state(store, window.state)
    restored = AppState()
    assert load_state(store, restored) == [] and restored.last_camera == "camera:5@1280x720:30"


def test_the_remembered_camera_is_tried_first_then_the_demo_clip(qtbot, make_window, tmp_path) -> None:
    from app.explaining.scheduler import AUTO_SOURCE

    window = make_window(AUTO_SOURCE, model=tmp_path / "absent.safetensors", last_camera="camera:7@640x480:30")
    qtbot.waitUntil(lambda: window.state.source_label != "", timeout=WAIT_MS)
    assert window.state.source_label == "box.mp4"  # no camera 7 here
    assert any(
        ("camera 7 did not open" in text or "camera 7 is not listed" in text) and "demo clip" in text
        for text in window.status.recent
    )
    assert window.state.last_camera == "camera:7@640x480:30"  # not forgotten: it may be plugged in next time


def test_a_camera_sys_does_not_list_is_not_probed_at_start(video4linux, monkeypatch) -> None:
    root, dev = video4linux
    monkeypatch.setattr(v4l2.sys, "platform", "linux")
    assert v4l2.camera_not_listed("camera:0@1280x720:30", root, dev) == ""  # listed: OpenCV is asked
    assert v4l2.camera_not_listed("camera:1", root, dev) == f"camera 1 is not listed in {root}"  # a metadata node
    assert v4l2.camera_not_listed("camera:0", root / "absent", dev).startswith("camera 0 is not listed")
    monkeypatch.setattr(v4l2.sys, "platform", "darwin")  # /sys cannot tell there
    assert v4l2.camera_not_listed("camera:1", root, dev) == ""


def test_a_bad_remembered_camera_is_skipped() -> None:
    state = AppState()
    assert state.apply_settings({"last_camera": "camera:0@wide"}) == ["last_camera"] and state.last_camera == ""
    assert state.apply_settings({"last_camera": "2"}) == [] and state.last_camera == "camera:2"


# -- File > Open stream... ---------------------------------------------------------------------------------------------
def test_the_stream_dialog_says_what_is_wrong_and_opens_only_a_good_address(qtbot) -> None:
    dialog = StreamDialog(None, "")
    qtbot.addWidget(dialog)
    open_button = dialog.buttons.buttons()[0]
    assert dialog.problem.text() == "" and not open_button.isEnabled()  # nothing typed yet: no reproach
    qtbot.keyClicks(dialog.field, "udp://239.0.0.1")
    assert dialog.problem.text().startswith("udp:// needs a port") and not open_button.isEnabled()
    dialog._accept_if_valid()  # Enter in the field
    assert dialog.result() == 0 and not dialog.isVisible()
    qtbot.keyClicks(dialog.field, ":5000")
    assert dialog.problem.text() == "" and open_button.isEnabled()
    dialog._accept_if_valid()
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.address == "udp://239.0.0.1:5000"


@pytest.fixture
def http_stream(tmp_path) -> Iterator[str]:
    """A video served over HTTP by this process (as a camera or a server streams it): its address."""
    folder = tmp_path / "served"
    folder.mkdir()
    write_video(folder / "live.avi", 300, fourcc="MJPG")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/live.avi"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def test_open_stream_opens_the_address_and_keeps_it_in_recent(qtbot, make_window, store, video_file, http_stream):
    window = make_window(str(video_file), model=Path("absent.safetensors"))
    qtbot.waitUntil(lambda: window.state.source_label == "clip.mp4", timeout=WAIT_MS)
    typed: list[str] = []

    def type_the_address() -> None:  # in the dialog's own event loop, as a user would
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, StreamDialog)
        typed.append(dialog.field.text())
        dialog.field.setText(http_stream)
        dialog.buttons.buttons()[0].click()

    QTimer.singleShot(0, type_the_address)
    window.menu_actions["open_stream"].trigger()
    assert typed == [""]  # no stream opened before
    qtbot.waitUntil(lambda: recent.recent_files(store)[:1] == [http_stream], timeout=WAIT_MS)
    assert window.state.source_spec == http_stream and window.state.last_camera == ""
    recent_menu = window.menu_actions["recent"].menu()
    assert recent_menu is not None
    recent_menu.aboutToShow.emit()
    assert recent_menu.actions()[0].text() == f"&1 {http_stream}"

    QTimer.singleShot(0, type_the_address)  # the dialog starts from the last stream opened
    window.menu_actions["open_stream"].trigger()
    assert typed == ["", http_stream]
