"""The menus and keyboard shortcuts of the main window (File, Camera, Playback, View, Help)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMenu, QMessageBox

from app.sources import list_cameras
from app.state import BACKENDS, FILLS, LAYOUTS
from app.widgets.view_controls import LAYOUT_TITLES

if TYPE_CHECKING:
    from app.window import MainWindow

VIDEO_FILTER = "Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.png *.jpg *.jpeg *.bmp);;All files (*)"
SHORTCUTS = """<table>
<tr><td>Space</td><td>play / pause</td></tr>
<tr><td>Left / Right</td><td>previous / next frame</td></tr>
<tr><td>Ctrl+O</td><td>open a video or image (or drop a file on the window)</td></tr>
<tr><td>Ctrl+S / Ctrl+Shift+S</td><td>save a snapshot (to the snapshot folder / choose where)</td></tr>
<tr><td>Ctrl+E</td><td>export the open video as an explained video</td></tr>
<tr><td>Ctrl+1 ... Ctrl+5</td><td>all four views / frame + mask / mask / preserved / destroyed</td></tr>
<tr><td>Ctrl+B</td><td>box around the mask</td></tr>
<tr><td>Ctrl+Q</td><td>quit</td></tr>
</table>"""


def build(window: MainWindow) -> dict[str, QAction]:
    menu_bar = window.menuBar()
    assert menu_bar is not None
    actions: dict[str, QAction] = {}

    def add(menu: QMenu, name: str, text: str, slot: Callable[[], object], shortcut: str | None = None) -> QAction:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        actions[name] = action
        return action

    state = window.state
    file_menu = _menu(menu_bar.addMenu("&File"))
    add(file_menu, "open", "&Open video or image...", lambda: _open_file(window), "Ctrl+O")
    add(
        file_menu,
        "reopen",
        "&Reopen last file",
        lambda: window.open_source(state.last_file) if state.last_file else None,
    )
    add(file_menu, "open_model", "Open &model...", lambda: _open_model(window))
    _radio_menu(
        _menu(file_menu.addMenu("&Backend")),
        BACKENDS,
        lambda: state.backend,
        lambda name: state.update(backend=name),
        window,
    )
    file_menu.addSeparator()
    add(file_menu, "snapshot", "&Save snapshot", window.save_snapshot, "Ctrl+S")
    add(file_menu, "snapshot_as", "Save snapshot &as...", lambda: _snapshot_as(window), "Ctrl+Shift+S")
    add(file_menu, "export", "&Export explained video...", window.export_video, "Ctrl+E")
    file_menu.addSeparator()
    add(file_menu, "quit", "&Quit", window.close, "Ctrl+Q")

    camera_menu = _menu(menu_bar.addMenu("&Camera"))
    camera_menu.aboutToShow.connect(lambda: _fill_camera_menu(camera_menu, window))

    playback = _menu(menu_bar.addMenu("&Playback"))
    add(playback, "play", "&Play / pause", window.player.toggle_play, "Space")
    add(playback, "previous", "P&revious frame", lambda: window.player.step(-1), "Left")
    add(playback, "next", "&Next frame", lambda: window.player.step(+1), "Right")

    view = _menu(menu_bar.addMenu("&View"))
    for number, name in enumerate(LAYOUTS, start=1):
        add(view, f"layout_{name}", LAYOUT_TITLES[name], partial(state.update, layout=name), f"Ctrl+{number}")
    add(view, "box", "&Box around the mask", lambda: state.update(show_box=not state.show_box), "Ctrl+B")
    _radio_menu(_menu(view.addMenu("&Fill")), FILLS, lambda: state.fill, lambda name: state.update(fill=name), window)

    help_menu = _menu(menu_bar.addMenu("&Help"))
    add(
        help_menu,
        "shortcuts",
        "&Keyboard shortcuts",
        lambda: QMessageBox.information(window, "Keyboard shortcuts", SHORTCUTS),
    )
    return actions


def _menu(menu: QMenu | None) -> QMenu:
    assert menu is not None
    return menu


def _radio_menu(
    menu: QMenu, names: tuple[str, ...], current: Callable[[], str], choose: Callable[[str], object], window: MainWindow
) -> None:
    """A menu of exclusive choices that shows the current one each time it opens."""
    group = QActionGroup(window)
    for name in names:
        action = QAction(name, window)
        action.setCheckable(True)
        action.triggered.connect(lambda _checked=False, name=name: choose(name))
        group.addAction(action)
        menu.addAction(action)

    def show_current() -> None:
        for action in group.actions():
            action.setChecked(action.text() == current())

    menu.aboutToShow.connect(show_current)


def _fill_camera_menu(menu: QMenu, window: MainWindow) -> None:
    """Probe the cameras each time the menu opens (they come and go); the one in use counts as present."""
    menu.clear()
    cameras = set(list_cameras())
    if window.state.source_kind == "camera" and window.state.source_label.startswith("camera "):
        cameras.add(int(window.state.source_label.split()[-1]))
    if not cameras:
        action = menu.addAction("No camera found")
        assert action is not None
        action.setEnabled(False)
    for index in sorted(cameras):
        action = menu.addAction(f"Camera {index}")
        assert action is not None
        action.triggered.connect(lambda _checked=False, index=index: window.open_source(index))


def _open_file(window: MainWindow) -> None:
    start = str(Path(window.state.last_file).parent) if window.state.last_file else ""
    path, _ = QFileDialog.getOpenFileName(window, "Open a video or an image", start, VIDEO_FILTER)
    if path:
        window.open_source(path)


def _open_model(window: MainWindow) -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Open a masking model", "", "Models (*.safetensors)")
    if path:
        window.state.update(model_path=path)


def _snapshot_as(window: MainWindow) -> None:
    from app.settings import set_snapshot_folder, snapshot_folder

    path, _ = QFileDialog.getSaveFileName(window, "Save snapshot", str(snapshot_folder(window.store)), "PNG (*.png)")
    if path:
        set_snapshot_folder(window.store, Path(path).parent)
        window.save_snapshot(path)
