"""The Camera menu: the cameras this system has, by name, each a submenu of the sizes and frame rates it offers;
choosing one opens the camera in that mode (`camera:0@1280x720:30`, app/source_specs.py).

Nothing is started to list them (no camera light, no seconds lost on indices with no camera behind them). On Linux
the names come from /sys/class/video4linux when the menu opens, and a camera's modes from its device node when its
submenu opens (app/playback/v4l2.py: the same node OpenCV opens as camera N, and no media framework to load).
Elsewhere (Windows, macOS) Qt Multimedia's device list gives both, when Qt Multimedia loads; a camera's index is then
its place in that list, which OpenCV's default backend follows too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PyQt6.QtWidgets import QMenu

from app.playback import v4l2
from app.source_specs import CameraMode, CameraSpec, as_camera
from app.state import AppState

Modes = tuple[list[CameraMode], str]  # (largest first, a note: "" when they are the camera's own)


@dataclass(frozen=True)
class ListedCamera:
    index: int  # OpenCV's camera index
    title: str  # its name, as the menu shows it
    modes: Callable[[], Modes]  # asked when its submenu opens
    problem: str = ""  # why it may not open (e.g. no permission on its node)


@dataclass(frozen=True)
class Listing:
    cameras: list[ListedCamera]
    source: str  # where the list comes from, or why there is none


def list_cameras(root: Path | None = None, dev: Path | None = None) -> Listing:
    """The cameras, named, without opening any. `root`, `dev`: another /sys/class/video4linux and /dev (tests)."""
    if root is None and not sys.platform.startswith("linux"):
        return _qt_multimedia_cameras()
    root = v4l2.SYS_ROOT if root is None else root
    if not root.is_dir():
        return Listing([], f"no video devices ({root} does not exist: no camera driver is loaded)")
    cameras = [
        ListedCamera(camera.index, camera.title, partial(v4l2.camera_modes, camera), camera.problem)
        for camera in v4l2.list_cameras(root, v4l2.DEV_ROOT if dev is None else dev)
    ]
    return Listing(cameras, f"listed from {root}")


def _qt_multimedia_cameras() -> Listing:
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError as error:  # e.g. a system library it needs is missing
        return Listing([], f"cameras cannot be listed here: Qt Multimedia did not load ({error})")
    cameras = []
    for position, device in enumerate(QMediaDevices.videoInputs()):
        formats = device.videoFormats()
        modes = v4l2.largest_first(
            [CameraMode(f.resolution().width(), f.resolution().height(), round(f.maxFrameRate(), 2)) for f in formats]
        )
        found: Modes = (modes, "") if modes else (list(v4l2.COMMON_MODES), "common sizes: the camera lists none")
        cameras.append(ListedCamera(position, device.description(), partial(_as_found, found)))
    return Listing(cameras, "listed by Qt Multimedia")


def _as_found(modes: Modes) -> Modes:
    return modes


def fill(menu: QMenu, state: AppState, open_source: Callable[[str], object], listing: Listing | None = None) -> None:
    """Rebuild the menu (when it opens: cameras come and go): a submenu per camera; the camera and mode open now
    checked."""
    menu.clear()
    listing = list_cameras() if listing is None else listing
    menu.setToolTipsVisible(True)
    current = as_camera(state.source_spec) if state.source_kind == "camera" else None
    if not listing.cameras:
        _note(menu, "No camera found")
        _note(menu, listing.source[0].upper() + listing.source[1:])
    for camera in listing.cameras:
        open_now = current is not None and current.index == camera.index
        submenu = QMenu(camera.title + (" (open now)" if open_now else ""), menu)
        submenu.setToolTipsVisible(True)
        submenu.aboutToShow.connect(partial(_fill_modes, submenu, camera, current, open_source))
        menu.addMenu(submenu)
        if camera.problem:
            submenu.setToolTip(camera.problem)


def _fill_modes(
    menu: QMenu, camera: ListedCamera, current: CameraSpec | None, open_source: Callable[[str], object]
) -> None:
    menu.clear()
    if camera.problem:
        _note(menu, camera.problem)
    modes, note = camera.modes()
    for mode in [None, *modes]:
        spec = CameraSpec(camera.index, mode)
        action = menu.addAction("Its default mode" if mode is None else str(mode))
        assert action is not None
        action.setCheckable(True)
        action.setChecked(current == spec)
        action.setData(str(spec))
        action.triggered.connect(lambda _checked=False, spec=spec: open_source(str(spec)))
        if mode is None:
            menu.addSeparator()
            if note:  # the full note (why) as its tooltip
                _note(menu, "Common sizes (its own are unknown): it gives the nearest it has", note)


def _note(menu: QMenu, text: str, tip: str = "") -> None:
    action = menu.addAction(text)
    assert action is not None
    action.setEnabled(False)
    action.setToolTip(tip or text)
