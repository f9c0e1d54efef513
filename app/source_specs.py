"""The sources that are not files, as text: a camera at a chosen size and frame rate, and a stream address.

`camera:0@1280x720:30` is camera 0 (OpenCV's index; /dev/video0 on Linux) asked for 1280x720 pixels at 30 frames
a second; `camera:0@1280x720` leaves the rate to the camera, `camera:0` (or `0`) the size too. The same text is
taken by --source, kept in Recent and in the remembered session. A stream is its address (udp://, tcp://, rtsp://,
http://, https://), checked here for its form only: nothing is opened. Plain Python, below everything else in app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

CAMERA_PREFIX = "camera:"
# the addresses app/playback/stream.py opens with PyAV (FFmpeg's protocols); the one list, for it and the dialog
STREAM_SCHEMES = ("udp", "tcp", "rtp", "rtsp", "rtmp", "srt", "http", "https")
SCHEMES_TEXT = "udp://, tcp://, rtsp://, http:// or https:// (also rtp://, rtmp://, srt://)"
CAMERA_FORM = "camera:INDEX[@WIDTHxHEIGHT[:FPS]], e.g. camera:0@1280x720:30"
_CAMERA = re.compile(r"camera:(\d+)(?:@(\d+)x(\d+)(?::(\d+(?:\.\d+)?))?)?")


@dataclass(frozen=True, order=True)
class CameraMode:
    """A size a camera delivers, and its frame rate (None: whatever the camera chooses at that size)."""

    width: int
    height: int
    fps: float | None = None

    def __str__(self) -> str:
        size = f"{self.width}x{self.height}"
        return size if self.fps is None else f"{size} at {fps_text(self.fps)} fps"


@dataclass(frozen=True)
class CameraSpec:
    index: int  # OpenCV's camera index (N of /dev/videoN on Linux)
    mode: CameraMode | None = None  # None: the camera's own default

    def __str__(self) -> str:
        """The text that opens it again (`camera:0@1280x720:30`)."""
        if self.mode is None:
            return f"{CAMERA_PREFIX}{self.index}"
        rate = "" if self.mode.fps is None else f":{fps_text(self.mode.fps)}"
        return f"{CAMERA_PREFIX}{self.index}@{self.mode.width}x{self.mode.height}{rate}"

    def describe(self) -> str:
        """For menus: 'Camera 0, 1280x720 at 30 fps'."""
        return f"Camera {self.index}" if self.mode is None else f"Camera {self.index}, {self.mode}"


def fps_text(fps: float) -> str:
    """30.0 -> '30', 7.5 -> '7.5', 29.97 -> '29.97'."""
    return f"{fps:.2f}".rstrip("0").rstrip(".")


def parse_camera(text: str | int) -> CameraSpec | None:
    """The camera `text` names (`0`, `camera:0`, `camera:0@1280x720:30`); None when it names no camera (a file, a
    stream). ValueError, one line saying the expected form, when it starts like a camera and goes wrong."""
    if isinstance(text, int):
        return CameraSpec(text)
    text = text.strip()
    if text.isdigit():
        return CameraSpec(int(text))
    if not text.lower().startswith(CAMERA_PREFIX):
        return None
    match = _CAMERA.fullmatch(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a camera: write {CAMERA_FORM}")
    index, width, height, fps = match.groups()
    if width is None:
        return CameraSpec(int(index))
    mode = CameraMode(int(width), int(height), None if fps is None else float(fps))
    if not (0 < mode.width <= 16384 and 0 < mode.height <= 16384) or (
        mode.fps is not None and not 0 < mode.fps <= 1000
    ):
        raise ValueError(f"{text!r}: a camera's size is 1..16384 pixels a side and its rate 0..1000 frames a second")
    return CameraSpec(int(index), mode)


def as_camera(text: str | int) -> CameraSpec | None:
    """The camera `text` names, None for anything else (a malformed camera spec included)."""
    try:
        return parse_camera(text)
    except ValueError:
        return None


def is_stream(text: str) -> bool:
    """Whether `text` is an address (scheme://...), as opposed to a camera or a file."""
    return "://" in text


def is_stream_address(text: str) -> bool:
    """Whether `text` is an address of a scheme PyAV opens as a stream (STREAM_SCHEMES; app/playback/stream.py):
    other addresses go to OpenCV (a GStreamer pipeline's, say)."""
    return is_stream(text) and text.split("://", 1)[0].strip().lower() in STREAM_SCHEMES


def stream_problem(text: str) -> str | None:
    """None when `text` has the form of a stream address this app opens; else one line saying what is wrong."""
    address = text.strip()
    if not address:
        return "Type a stream address, e.g. rtsp://192.168.1.20:554/stream"
    if any(character.isspace() for character in address):
        return "A stream address has no spaces"
    if not is_stream(address):
        return f"A stream address starts with {SCHEMES_TEXT} (a file: File > Open)"
    parts = urlsplit(address)
    scheme = parts.scheme.lower()
    if scheme not in STREAM_SCHEMES:
        return f"{scheme or address.split('://')[0]}:// is not a stream this app opens: use {SCHEMES_TEXT}"
    try:
        port = parts.port
    except ValueError:
        return f"{scheme}://: the port must be a number from 0 to 65535"
    needs_port = scheme in ("udp", "tcp", "rtp", "srt")  # a bare socket: no default port
    example = f"{scheme}://192.168.1.20:5000" if needs_port else f"{scheme}://192.168.1.20/stream"
    listening = scheme == "udp" and parts.netloc.startswith("@")  # udp://@:5000 receives on port 5000
    if needs_port and port is None:
        return f"{scheme}:// needs a port, e.g. {example}" + (
            " (udp://@:5000 listens on 5000)" if scheme == "udp" else ""
        )
    if not parts.hostname and not listening:
        return f"{scheme}:// names no host, e.g. {example}"
    return None


def reopening_text(spec: str | int) -> str:
    """What opens `spec` again and is remembered for it: a camera's canonical spec, a stream's address; "" for a
    file (remembered by its path) or text that names nothing."""
    camera = as_camera(spec)
    if camera is not None:
        return str(camera)
    return spec.strip() if isinstance(spec, str) and is_stream(spec) else ""


def describe(entry: str) -> str:
    """How a remembered camera or stream is named in a menu (a camera by its index and mode, a stream by its
    address); any other text as it is."""
    camera = as_camera(entry)
    return camera.describe() if camera is not None else entry
