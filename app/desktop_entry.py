"""`saliency-app --install-desktop-entry`: put the app in the desktop's application menu, for this user.

A freedesktop launcher (Desktop Entry spec) and an icon under $XDG_DATA_HOME, so a pip install needs no root and
no packaging. Plain Python, no Qt and no torch: it runs before any window code, without a display. The icon is drawn
here (OpenCV for the PNG, a text SVG) so the package carries no binary file for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.paths import write_atomic

APPLICATION_NAME = "Live saliency explainer"  # QApplication's applicationName: Qt's X11 WM_CLASS class
DESKTOP_ID = "live-saliency"  # the launcher's file name, the icon's name and Qt's desktopFileName (Wayland app id)
ICON_SIZE = 256

# Characters that make the Exec key quote an argument (Desktop Entry spec, "The Exec key").
_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """$XDG_DATA_HOME, else ~/.local/share. The XDG Base Directory spec says to ignore an empty or relative value."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def entry_paths(home: Path | None = None) -> list[Path]:
    """Every file install writes, in order: the launcher, the PNG icon, the SVG icon. Uninstall removes these and
    nothing else."""
    home = data_home() if home is None else home
    return [
        home / "applications" / f"{DESKTOP_ID}.desktop",
        home / "icons" / "hicolor" / f"{ICON_SIZE}x{ICON_SIZE}" / "apps" / f"{DESKTOP_ID}.png",
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{DESKTOP_ID}.svg",
    ]


def install(data_home: Path | None = None) -> list[Path]:
    """Write the launcher and the icons (each atomically: a menu never reads half a file), refresh the desktop's
    caches where their tools exist; the paths written."""
    desktop, png, svg = entry_paths(data_home)
    write_atomic(png, icon_png())
    write_atomic(svg, ICON_SVG.encode())
    write_atomic(desktop, desktop_file().encode())  # last: the launcher never names an icon that is not there yet
    _refresh_caches(desktop.parent, png.parents[2])
    return [desktop, png, svg]


def uninstall(data_home: Path | None = None) -> list[Path]:
    """Remove what install wrote (folders and other files stay: they may be shared); the paths removed, none when
    nothing was installed."""
    removed = []
    for path in entry_paths(data_home):
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        desktop, png, _svg = entry_paths(data_home)
        _refresh_caches(desktop.parent, png.parents[2])
    return removed


def run(install_it: bool, home: Path | None = None) -> int:
    """The command: one line on stdout saying what was done, status 0; a file that cannot be written or removed is
    one line on stderr, status 1."""
    try:
        if install_it:
            desktop, *icons = install(home)
            print(f"saliency-app: added to the application menu: {desktop} (icons: {', '.join(map(str, icons))})")
        else:
            removed = uninstall(home)
            if removed:
                print(f"saliency-app: removed from the application menu: {', '.join(map(str, removed))}")
            else:
                print(f"saliency-app: nothing to remove: no launcher at {entry_paths(home)[0]}")
    except OSError as error:
        action = "install" if install_it else "remove"
        print(f"saliency-app: error: cannot {action} the desktop entry: {error}", file=sys.stderr)
        return 1
    return 0


def launch_command() -> list[str]:
    """What the launcher runs: the `saliency-app` script beside this Python (a pip install), else this Python with
    `-m app.main`. Absolute but not resolved: a virtual environment's python is a link out of it, and only the link
    runs with the environment's packages."""
    python = Path(sys.executable).absolute()
    script = python.parent / "saliency-app"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "app.main"]


def desktop_file() -> str:
    """The launcher's text (Desktop Entry spec; Version 1.4, the newest that Debian 12's desktop-file-validate
    knows; every key here is older). One main category, Science: each main category is a place in the menus, and
    Graphics;Science;Education; listed the app three times. StartupWMClass is the class Qt gives the window on X11
    (the application name), so docks group the window under this launcher; on Wayland, Qt's desktopFileName does."""
    command = launch_command()
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        f"Name={APPLICATION_NAME}",
        "GenericName=Image classifier explainer",
        "Comment=Show live what an image classifier looks at in a webcam or a video (saliency masks)",
        f"TryExec={_string(command[0])}",
        f"Exec={_exec(command)}",
        f"Icon={DESKTOP_ID}",
        "Terminal=false",
        "Categories=Science;ArtificialIntelligence;ImageProcessing;",
        "Keywords=saliency;explainability;classifier;heat map;webcam;video;",
        f"StartupWMClass={APPLICATION_NAME}",
    ]
    if len(command) > 1:  # python -m app.main: from a checkout that is not installed, app/ is found in its folder
        root = Path(__file__).resolve().parent.parent
        if (root / "pyproject.toml").is_file():
            lines.append(f"Path={_string(str(root))}")
    return "\n".join(lines) + "\n"


def _string(value: str) -> str:
    """A value of type string: backslash, newline, tab, carriage return escaped; a leading space as \\s."""
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "\\s" + value[1:] if value.startswith(" ") else value


def _exec(arguments: list[str]) -> str:
    """The Exec value: an argument with a reserved character (a space in a path...) in double quotes with ", `, $
    and \\ escaped, % doubled (field codes), then escaped again as a string, as the spec reads it in that order."""
    quoted = []
    for argument in arguments:
        if argument and not _RESERVED.intersection(argument):
            quoted.append(argument)
        else:
            inner = "".join("\\" + char if char in '"`$\\' else char for char in argument)
            quoted.append(f'"{inner}"')
    return _string(" ".join(quoted).replace("%", "%%"))


def _refresh_caches(applications: Path, hicolor: Path) -> None:
    """Tell the desktop about the change where its tools exist; a missing or failing tool changes nothing (menus
    rescan the folders anyway). The icon cache is only refreshed where one exists, as xdg-icon-resource does: a new
    cache would hide the icons of programs that do not refresh it."""
    if applications.is_dir():
        _run_quietly(["update-desktop-database", "-q", str(applications)])
    if hicolor.is_dir():
        try:
            os.utime(hicolor)  # icon themes watch the theme folder's time
        except OSError:
            pass
        if (hicolor / "icon-theme.cache").is_file():
            _run_quietly(["gtk-update-icon-cache", "-q", "-t", "-f", str(hicolor)])


def _run_quietly(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        return
    try:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


def icon_png(size: int = ICON_SIZE) -> bytes:
    """The icon as PNG bytes (RGBA): an eye whose white is a saliency heat map, on a dark rounded square. Drawn at
    4x and averaged down, so every edge is antialiased; the same bytes every time."""
    import cv2
    import numpy as np

    scale = 4
    # pixel centres in the 256-unit design space of ICON_SVG, sampled 4x per output pixel
    axis = (np.arange(size * scale, dtype=np.float32) + 0.5) * (256.0 / (size * scale))
    x, y = np.meshgrid(axis, axis)
    dx, dy = x - 128.0, y - 128.0

    # the rounded square: (16, 16) to (240, 240), corner radius 44
    qx = np.maximum(np.abs(dx) - (112.0 - 44.0), 0.0)
    qy = np.maximum(np.abs(dy) - (112.0 - 44.0), 0.0)
    square = (qx * qx + qy * qy <= 44.0**2).astype(np.float32)

    # the eye: where two circles overlap (half width 92, half height 54), as the SVG's two arcs
    half_width, half_height = 92.0, 54.0
    radius = (half_width**2 + half_height**2) / (2 * half_height)
    offset = radius - half_height

    def lens(grow: float) -> np.ndarray:
        upper = dx**2 + (dy - offset) ** 2 <= (radius + grow) ** 2
        lower = dx**2 + (dy + offset) ** 2 <= (radius + grow) ** 2
        return (upper & lower).astype(np.float32)

    eye_inside, eye_outer = lens(-5.0), lens(5.0)
    # the heat map: the classifier's evidence, strongest a little up and right of the pupil, a weaker second spot
    heat = np.exp(-((dx - 10) ** 2 + (dy + 8) ** 2) / (2 * 34.0**2)) + 0.45 * np.exp(
        -((dx + 52) ** 2 + (dy - 14) ** 2) / (2 * 18.0**2)
    )
    heat_bgr = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    pupil = (dx**2 + dy**2 <= 19.0**2).astype(np.float32)
    highlight = ((dx + 8) ** 2 + (dy + 8) ** 2 <= 6.0**2).astype(np.float32)

    def over(base: np.ndarray, colour: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        return base * (1 - coverage[..., None]) + colour * coverage[..., None]

    top, bottom = np.array([58, 40, 34], np.float32), np.array([36, 24, 20], np.float32)  # BGR, dark slate
    shade = ((y - 16.0) / 224.0).clip(0, 1)[..., None]
    image = top * (1 - shade) + bottom * shade
    image = over(image, np.array([244, 238, 232], np.float32), eye_outer)  # the eye's outline
    image = over(image, heat_bgr.astype(np.float32), eye_inside)
    image = over(image, np.array([22, 12, 10], np.float32), pupil)
    image = over(image, np.array([255, 255, 255], np.float32), highlight)

    rgba = np.dstack([image * square[..., None], square * 255.0])  # premultiplied while averaging: no dark fringe
    small = cv2.resize(rgba, (size, size), interpolation=cv2.INTER_AREA)
    alpha = small[..., 3:4] / 255.0
    colour = np.where(alpha > 0, small[..., :3] / np.maximum(alpha, 1e-6), 0.0)
    bgra = np.dstack([colour, small[..., 3:4]]).round().clip(0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:  # pragma: no cover - OpenCV always encodes a plain BGRA image
        raise OSError("OpenCV could not encode the icon as PNG")
    return bytes(encoded.tobytes())


# The icon_png design as a vector (hicolor's "scalable" size): one heat spot, the inferno colours of its fall-off.
ICON_SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>Live saliency explainer</title>
  <defs>
    <linearGradient id="tile" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#22283a"/>
      <stop offset="1" stop-color="#141824"/>
    </linearGradient>
    <radialGradient id="heat" cx="138" cy="120" r="90" gradientUnits="userSpaceOnUse">
      <stop offset="0" stop-color="#fcffa4"/>
      <stop offset="0.15" stop-color="#f3e35a"/>
      <stop offset="0.3" stop-color="#f78410"/>
      <stop offset="0.45" stop-color="#b73557"/>
      <stop offset="0.6" stop-color="#64156e"/>
      <stop offset="0.75" stop-color="#280b53"/>
      <stop offset="1" stop-color="#040312"/>
    </radialGradient>
  </defs>
  <rect x="16" y="16" width="224" height="224" rx="44" fill="url(#tile)"/>
  <path d="M36 128 A105.37 105.37 0 0 1 220 128 A105.37 105.37 0 0 1 36 128 Z"
        fill="url(#heat)" stroke="#e8eef4" stroke-width="10" stroke-linejoin="round"/>
  <circle cx="128" cy="128" r="19" fill="#0a0c16"/>
  <circle cx="120" cy="120" r="6" fill="#ffffff"/>
</svg>
"""
