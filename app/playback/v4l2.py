"""The cameras of a Linux system by name, without starting any (no camera light, no waiting on missing ones).

`list_cameras` reads /sys/class/video4linux (each videoN folder's `name`), and keeps the capture devices: asked of
the device node with VIDIOC_QUERYCAP, or, when the node cannot be asked (absent, not V4L2), by the folder's `index`
(a USB camera's second node, its metadata, has index 1). `camera_modes` enumerates the sizes and frame rates one
camera offers (VIDIOC_ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS). Both open the node read-only and
non-blocking and never ask for a picture: nothing streams. Plain Python (no Qt, no OpenCV): tested on folder trees.

The structures are those of <linux/videodev2.h> (sizes and offsets checked against it with a C compiler; the ioctl
numbers carry the sizes, so a wrong one is refused by the kernel, never misread).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.source_specs import CameraMode, as_camera

SYS_ROOT = Path("/sys/class/video4linux")
DEV_ROOT = Path("/dev")
# offered when a camera's own modes cannot be read (the camera gives the nearest it has)
COMMON_MODES = (CameraMode(1920, 1080, 30.0), CameraMode(1280, 720, 30.0), CameraMode(640, 480, 30.0))

# ioctl numbers: _IOR('V', 0, struct v4l2_capability) and _IOWR('V', n, ...) of <linux/videodev2.h>
VIDIOC_QUERYCAP = 0x80685600  # struct v4l2_capability, 104 bytes
VIDIOC_ENUM_FMT = 0xC0405602  # struct v4l2_fmtdesc, 64 bytes
VIDIOC_ENUM_FRAMESIZES = 0xC02C564A  # struct v4l2_frmsizeenum, 44 bytes
VIDIOC_ENUM_FRAMEINTERVALS = 0xC034564B  # struct v4l2_frmivalenum, 52 bytes
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_OUTPUT = 0x00000002
CAP_VIDEO_M2M = 0x00008000  # a codec or scaler (memory to memory), not a camera; older ones say CAPTURE | OUTPUT
CAP_DEVICE_CAPS = 0x80000000  # device_caps is filled (else only the driver's capabilities)
BUF_TYPE_VIDEO_CAPTURE = 1
DISCRETE, CONTINUOUS, STEPWISE = 1, 2, 3  # V4L2_FRMSIZE_TYPE_* and V4L2_FRMIVAL_TYPE_* alike
_ENOUGH = 64  # entries read per enumeration at most (a driver that never says "no more" cannot hang the menu)

Ioctl = Callable[[int, int, bytearray], object]


@dataclass(frozen=True)
class Camera:
    index: int  # N of /dev/videoN: OpenCV's camera index N
    name: str  # as the driver names it ("HD Pro Webcam C920")
    node: Path
    problem: str = ""  # why its node cannot be asked (e.g. no permission): its modes cannot be read either

    @property
    def title(self) -> str:
        return f"{self.name} ({self.node.name})"


def list_cameras(root: Path = SYS_ROOT, dev: Path = DEV_ROOT, ioctl: Ioctl | None = None) -> list[Camera]:
    """The capture devices under `root` (a /sys/class/video4linux), in index order; their nodes are under `dev`.
    Empty when `root` does not exist (no video driver loaded)."""
    if not root.is_dir():
        return []
    cameras = []
    for folder in sorted(root.iterdir(), key=_number):
        match = re.fullmatch(r"video(\d+)", folder.name)
        if match is None:
            continue
        node = dev / folder.name
        name = _read(folder / "name") or folder.name
        capture, problem = _is_capture(node, folder, ioctl)
        if capture:
            cameras.append(Camera(int(match.group(1)), name, node, problem))
    return cameras


def camera_not_listed(camera: str, root: Path = SYS_ROOT, dev: Path = DEV_ROOT) -> str:
    """Why the camera `camera` (a spec of app/source_specs.py) is surely not there, without opening it: on Linux, a
    number /sys does not list (the start without --source then plays the demo clip at once, instead of waiting on
    OpenCV's probe of a missing index); '' when it may be there, or where /sys cannot tell (other systems)."""
    spec = as_camera(camera)
    if spec is None or not sys.platform.startswith("linux"):
        return ""
    if any(listed.index == spec.index for listed in list_cameras(root, dev)):
        return ""
    return f"camera {spec.index} is not listed in {root}"


def _number(folder: Path) -> tuple[int, str]:
    digits = re.sub(r"\D", "", folder.name)
    return (int(digits) if digits else -1, folder.name)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _is_capture(node: Path, folder: Path, ioctl: Ioctl | None) -> tuple[bool, str]:
    """(a capture device?, why its node could not be asked). Asked of the node when it opens; else the folder's
    `index` decides (0: the device's first node, its pictures)."""
    try:
        capabilities = query_capabilities(node, ioctl)
    except OSError as error:
        capabilities = None
        problem = _node_problem(node, error)
    else:
        problem = ""
    if capabilities is not None:
        camera = capabilities & CAP_VIDEO_CAPTURE and not capabilities & (CAP_VIDEO_OUTPUT | CAP_VIDEO_M2M)
        return bool(camera), ""
    return _read(folder / "index") in ("", "0"), problem


def _node_problem(node: Path, error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to open {node} (add yourself to its group, often 'video', and log in again)"
    if error.errno == errno.ENOENT:
        return f"{node} does not exist"
    if error.errno == errno.ENOTTY:
        return f"{node} is not a V4L2 device"
    return f"{node}: {error.strerror or error}"


def query_capabilities(node: Path, ioctl: Ioctl | None = None) -> int:
    """The device's capabilities (V4L2_CAP_*), from VIDIOC_QUERYCAP; OSError when the node cannot be asked."""
    buffer = bytearray(104)
    with _opened(node) as fd:
        (ioctl or fcntl.ioctl)(fd, VIDIOC_QUERYCAP, buffer)
    capabilities, device_caps = struct.unpack_from("=II", buffer, 84)
    return int(device_caps if capabilities & CAP_DEVICE_CAPS else capabilities)


def camera_modes(camera: Camera, ioctl: Ioctl | None = None) -> tuple[list[CameraMode], str]:
    """(the sizes and rates `camera` offers, largest and fastest first; a note): when they cannot be read,
    COMMON_MODES and a note saying why."""
    try:
        with _opened(camera.node) as fd:
            modes = _enumerate(fd, ioctl or fcntl.ioctl)
    except OSError as error:
        return list(
            COMMON_MODES
        ), f"common sizes: the camera's own could not be read ({_node_problem(camera.node, error)})"
    if not modes:
        return list(COMMON_MODES), "common sizes: the camera lists none of its own"
    return modes, ""


class _opened:
    """An fd on a device node, read-only and non-blocking (opening does not start streaming), closed after."""

    def __init__(self, node: Path) -> None:
        self.fd = os.open(node, os.O_RDONLY | os.O_NONBLOCK)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)


def _enumerate(fd: int, ioctl: Ioctl) -> list[CameraMode]:
    modes: set[CameraMode] = set()
    for pixel_format in _pixel_formats(fd, ioctl):
        for width, height in _sizes(fd, ioctl, pixel_format):
            rates: list[float | None] = [round(fps, 2) for fps in _rates(fd, ioctl, pixel_format, width, height)]
            for fps in rates or [None]:  # a driver that lists no rates: the size at the camera's own rate
                modes.add(CameraMode(width, height, fps))
    return largest_first(modes)


def largest_first(modes: set[CameraMode] | list[CameraMode]) -> list[CameraMode]:
    """Each mode once, the largest size first, at each size the fastest rate first."""
    return sorted(set(modes), key=lambda mode: (mode.width * mode.height, mode.width, mode.fps or 0.0), reverse=True)


def _entries(fd: int, ioctl: Ioctl, request: int, make: Callable[[int], bytearray]) -> list[bytearray]:
    """The driver's entries 0, 1, ... until it answers EINVAL (the end of the list)."""
    entries = []
    for index in range(_ENOUGH):
        buffer = make(index)
        try:
            ioctl(fd, request, buffer)
        except OSError as error:
            if error.errno == errno.EINVAL:
                break
            raise
        entries.append(buffer)
    return entries


def _pixel_formats(fd: int, ioctl: Ioctl) -> list[int]:
    def fmtdesc(index: int) -> bytearray:  # index, type; the driver fills flags, description, pixelformat...
        buffer = bytearray(64)
        struct.pack_into("=II", buffer, 0, index, BUF_TYPE_VIDEO_CAPTURE)
        return buffer

    return [struct.unpack_from("=I", buffer, 44)[0] for buffer in _entries(fd, ioctl, VIDIOC_ENUM_FMT, fmtdesc)]


def _sizes(fd: int, ioctl: Ioctl, pixel_format: int) -> list[tuple[int, int]]:
    def frmsizeenum(index: int) -> bytearray:  # index, pixel_format; the driver fills type and the union
        buffer = bytearray(44)
        struct.pack_into("=II", buffer, 0, index, pixel_format)
        return buffer

    sizes = []
    for buffer in _entries(fd, ioctl, VIDIOC_ENUM_FRAMESIZES, frmsizeenum):
        kind = struct.unpack_from("=I", buffer, 8)[0]
        if kind == DISCRETE:
            sizes.append(struct.unpack_from("=II", buffer, 12))
        else:  # stepwise or continuous: one entry (min_w, max_w, step_w, min_h, max_h, step_h); the largest and
            # the common sizes inside the range
            min_w, max_w, _step_w, min_h, max_h, _step_h = struct.unpack_from("=6I", buffer, 12)
            sizes.append((max_w, max_h))
            sizes += [
                (mode.width, mode.height)
                for mode in COMMON_MODES
                if min_w <= mode.width <= max_w and min_h <= mode.height <= max_h
            ]
            break
    return [(int(width), int(height)) for width, height in sizes]


def _rates(fd: int, ioctl: Ioctl, pixel_format: int, width: int, height: int) -> list[float]:
    def frmivalenum(index: int) -> bytearray:  # index, pixel_format, width, height; the driver fills type, union
        buffer = bytearray(52)
        struct.pack_into("=IIII", buffer, 0, index, pixel_format, width, height)
        return buffer

    rates = []
    try:
        entries = _entries(fd, ioctl, VIDIOC_ENUM_FRAMEINTERVALS, frmivalenum)
    except OSError:  # a driver that cannot enumerate its rates (ENOTTY): the size still counts
        return []
    for buffer in entries:
        kind, numerator, denominator = struct.unpack_from("=III", buffer, 16)  # the interval (stepwise: its minimum)
        if numerator > 0 and denominator > 0:
            rates.append(denominator / numerator)
        if kind != DISCRETE:
            break
    return rates
