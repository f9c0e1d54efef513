"""AppState: everything the user chose and where the player stands, as plain Python (no Qt, testable headless).

Widgets bind to it both ways: they call `update(...)` and listen with `subscribe(...)`. Values are validated
here once, so a stale settings file or a bad command-line value can never put the app in an impossible state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from app.source_specs import CAMERA_FORM, parse_camera
from engine.contract import ASPECTS, AUTO, BACKEND_CHOICES, FILLS
from engine.runtime.views import LAYOUTS
from engine.video.reader import FALLBACK_FPS

Listener = Callable[[set[str]], None]

# The fields remembered between runs (QSettings), see app/settings.py.
PERSISTENT = (
    "last_file",
    "target",
    "layout",
    "fill",
    "opacity",
    "backend",
    "show_box",
    "evidence",
    "loop",
    "aspect",
    "caption",
    "model_path",
    "steady_class",
    "smooth_mask",
    "last_camera",
)
_FLAGS = ("show_box", "evidence", "loop", "caption", "steady_class", "smooth_mask")


@dataclass
class AppState:
    # what to explain
    model_path: str | None = None  # None: the bundled default model
    backend: str = "auto"
    target: int = AUTO  # a class index, or AUTO: the black box's top prediction on each frame
    region: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) of the frame explained alone; None: all of it
    # a picture that is not square reaches the model stretched (the default: the black box finds the true class more
    # often, measured with scripts/compare_aspect.py) or padded to a square (ASPECTS)
    aspect: str = "stretch"
    # how to show it
    layout: str = "grid"
    fill: str = "blur"
    opacity: float = 0.5
    show_box: bool = False
    evidence: bool = True
    caption: bool = True  # the class and its three probabilities written on snapshots and exports
    # steady over time (engine.runtime.temporal; defaults chosen from its measurements)
    steady_class: bool = True  # "auto" holds its class until another leads clearly for a few frames
    smooth_mask: bool = True  # the mask is averaged over consecutive frames
    # the player
    source_label: str = ""  # "camera 0", "box.mp4", ...
    source_kind: str = ""  # "camera" | "stream" | "video" | "image" | ""
    frame_count: int | None = None  # None: a live camera (no end)
    fps: float = FALLBACK_FPS
    frame_index: int | None = None  # the frame on screen
    playing: bool = False
    recording: bool = False  # the live view is being recorded (app/export/recording.py)
    loop: bool = True
    last_file: str = ""  # the last file opened by the user (remembered; never the bundled demo clip)
    source_path: str = ""  # the file open now, the demo clip too ("" for a camera or a stream)
    source_spec: str = ""  # what reopens the camera or stream open now (app/source_specs.py); "" for a file
    last_camera: str = ""  # the camera (and mode) chosen last, opened at the start without --source (remembered)
    _listeners: list[Listener] = field(default_factory=list, repr=False, compare=False)
    _restored: set[str] = field(default_factory=set, repr=False, compare=False)  # remembered values not changed since

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(changed_field_names)` after every update; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def update(self, **changes: Any) -> set[str]:
        """Set validated values; listeners hear only about fields whose value really changed."""
        changed: set[str] = set()
        for name, value in changes.items():
            value = _validate(name, value)
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed.add(name)
        self._restored -= changed
        if changed:
            for listener in list(self._listeners):
                listener(changed)
        return changed

    # -- the player ---------------------------------------------------------------------------------------------
    @property
    def seekable(self) -> bool:
        return self.source_kind in ("video", "image") and bool(self.frame_count)

    def clamp_frame(self, index: int) -> int:
        """A frame index inside the file: past the end wraps round when looping, else stops at the ends."""
        if not self.frame_count:
            return 0
        if self.loop:
            return index % self.frame_count
        return min(max(index, 0), self.frame_count - 1)

    def stepped(self, delta: int) -> int:
        return self.clamp_frame((self.frame_index or 0) + delta)

    def position_text(self) -> str:
        """'frame 12 / 455   0:00.40 / 0:15.18' for files; the camera's name for live sources."""
        if self.source_kind in ("camera", "stream"):
            return f"live: {self.source_label}"
        if self.frame_index is None or not self.frame_count:
            return "no frame"
        now = _clock(self.frame_index / self.fps)
        total = _clock(self.frame_count / self.fps)
        return f"frame {self.frame_index} / {self.frame_count - 1}   {now} / {total}"

    # -- settings -----------------------------------------------------------------------------------------------
    def to_settings(self) -> dict[str, Any]:
        """The remembered values; the target as "auto" or its index, as every version has written it; the
        bundled model as ""."""
        values = {name: getattr(self, name) for name in PERSISTENT}
        values["target"] = "auto" if self.target == AUTO else self.target
        values["model_path"] = self.model_path or ""
        return values

    def apply_settings(self, stored: Mapping[str, Any]) -> list[str]:
        """Take remembered values; a value that does not validate is skipped (and named in the result). The
        values taken count as restored (`is_restored`) until they change."""
        rejected, taken = [], set()
        for name in PERSISTENT:
            if name not in stored:
                continue
            try:
                self.update(**{name: _from_stored(name, stored[name])})
                taken.add(name)
            except (TypeError, ValueError):
                rejected.append(name)
        self._restored |= taken
        return rejected

    def is_restored(self, name: str) -> bool:
        """Whether `name` still holds the value remembered from the last session (not chosen in this one)."""
        return name in self._restored


def _validate(name: str, value: Any) -> Any:
    if name not in _FIELD_NAMES:
        raise AttributeError(f"AppState has no field {name!r}")
    if name == "fill" and value not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, not {value!r}")
    if name == "layout" and value not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {value!r}")
    if name == "backend" and value not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, not {value!r}")
    if name == "aspect" and value not in ASPECTS:
        raise ValueError(f"aspect must be one of {ASPECTS}, not {value!r}")
    if name == "region" and value is not None:
        region = tuple(operator.index(edge) for edge in value)
        if len(region) != 4 or region[2] <= region[0] or region[3] <= region[1] or min(region) < 0:
            raise ValueError(f"a region is (x0, y0, x1, y1) with x0 < x1 and y0 < y1, not {value!r}")
        return region
    if name == "opacity":
        return min(max(float(value), 0.0), 1.0)
    if name == "last_camera" and value != "":
        camera = parse_camera(str(value))  # ValueError for a malformed one
        if camera is None:
            raise ValueError(f"last_camera must be a camera ({CAMERA_FORM}), not {value!r}")
        return str(camera)
    if name == "target":
        if isinstance(value, bool):
            raise ValueError(f"target must be a class index >= 0 or AUTO ({AUTO}), not {value!r}")
        index = operator.index(value)  # any integer (numpy's too); TypeError for text and floats
        if index < 0 and index != AUTO:
            raise ValueError(f"target must be a class index >= 0 or AUTO ({AUTO}), not {value!r}")
        return index
    if name == "fps":
        value = float(value)
        return value if value > 0 else FALLBACK_FPS  # files without a frame rate in their header
    return value


def _from_stored(name: str, value: Any) -> Any:
    """QSettings hands back strings from INI files: turn them back into the field's type."""
    if name in _FLAGS:
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        return bool(value)
    if name == "target":  # "auto" or an index as text (written by every version so far); an int from other stores
        return AUTO if value in (None, "", "auto") else int(value)
    if name == "opacity":
        return float(value)
    if name == "model_path":
        return str(value) if value else None
    return str(value)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60.0)
    return f"{int(minutes)}:{seconds:05.2f}"


_FIELD_NAMES = {f.name for f in fields(AppState) if not f.name.startswith("_")}
