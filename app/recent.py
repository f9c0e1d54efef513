"""File > Recent: the last files, cameras and streams opened, newest first, remembered in QSettings (at most
MAX_RECENT). A file is kept by its path, a camera by its spec (`camera:0@1280x720:30`), a stream by its address.

A file that has gone (moved, deleted, an unplugged drive) is taken off the list when the list is read for the menu,
and the caller is told which, so the user hears why it vanished from the menu. Cameras and streams stay: whether one
answers is known only by opening it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QMenu

from app.source_specs import as_camera, describe, is_stream

MAX_RECENT = 8
_KEY = "recent_files"


def recent_files(store: QSettings) -> list[str]:
    """As stored, newest first (missing files included: see `prune`)."""
    value = store.value(_KEY)
    if value is None or value == "":
        return []
    if isinstance(value, str):  # an INI file gives a single entry back as text
        value = [value]
    return [str(path) for path in value if path][:MAX_RECENT]


def remember(store: QSettings, path: str | Path) -> list[str]:
    """`path` (a file, a camera spec or a stream address) first (once), the oldest beyond MAX_RECENT dropped."""
    entry = str(path) if not _is_file(str(path)) else str(Path(path).resolve())
    files = [entry, *(other for other in recent_files(store) if other != entry)][:MAX_RECENT]
    store.setValue(_KEY, files)
    return files


def prune(store: QSettings) -> tuple[list[str], list[str]]:
    """(files still there, files taken off the list because they are missing)."""
    files = recent_files(store)
    present = [path for path in files if not _is_file(path) or Path(path).is_file()]
    missing = [path for path in files if path not in present]
    if missing:
        store.setValue(_KEY, present)
    return present, missing


def missing_note(missing: list[str]) -> str:
    names = ", ".join(Path(path).name for path in missing)
    return f"Removed from Recent (no longer there): {names}"


def fill_menu(menu: QMenu, store: QSettings, open_file: Callable[[str], object], note: Callable[[str], object]) -> None:
    """The menu's entries, rebuilt each time it opens: numbered (Alt+1..8), a missing file removed with a note."""
    menu.clear()
    present, missing = prune(store)
    if missing:
        note(missing_note(missing))
    if not present:
        empty = menu.addAction("Nothing opened yet")
        assert empty is not None
        empty.setEnabled(False)
        return
    for number, path in enumerate(present, start=1):
        action = menu.addAction(f"&{number} {Path(path).name if _is_file(path) else describe(path)}")
        assert action is not None
        action.setToolTip(path)
        action.setData(path)
        action.triggered.connect(lambda _checked=False, path=path: open_file(path))
    menu.addSeparator()
    clear = menu.addAction("Clear the list")
    assert clear is not None
    clear.triggered.connect(lambda _checked=False: store.setValue(_KEY, []))


def _is_file(entry: str) -> bool:
    """A file's path, as opposed to a camera spec or a stream address."""
    return as_camera(entry) is None and not is_stream(entry)
