"""Qt's system libraries, checked before Qt starts: the PyQt6 wheel brings Qt, not the X11 / EGL libraries that Qt's
window-system plugin (xcb) links to. Without one, Qt aborts with several lines about "the Qt platform plugin "xcb"";
the app says instead, in one line, which libraries are missing and what to install.

Read with `ldd` on the plugin (glibc's, on every Linux): nothing is loaded, no Qt, no display needed.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """Qt's xcb platform plugin inside the installed PyQt6 (found without importing Qt), or None."""
    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt6" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries `library` needs that the system's loader cannot find (none when ldd is not there)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        done = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(done.stdout)))


def debian_package(soname: str) -> str:
    """The Debian / Ubuntu package that usually holds a library: libxcb-cursor.so.0 -> libxcb-cursor0,
    libdbus-1.so.3 -> libdbus-1-3 (Debian's naming rule: a '-' where the name ends in a digit)."""
    stem, _, version = soname.partition(".so.")
    stem = stem.lower()
    if not version:
        return stem
    return f"{stem}{'-' if stem[-1].isdigit() else ''}{version.split('.')[0]}"


def missing_message(missing: list[str]) -> str:
    packages = " ".join(debian_package(name) for name in missing)
    return (
        f"Qt's window-system plugin (xcb) needs system libraries that are missing here: {', '.join(missing)}; "
        f"on Debian or Ubuntu: sudo apt-get install {packages} (README, What you need)"
    )
