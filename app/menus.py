"""The menus and keyboard shortcuts of the main window (File, Model, Camera, Playback, View, Help); the Camera
menu's entries are app/widgets/camera_menu.py's, File > Open stream's dialog app/widgets/stream_dialog.py's.

They act on AppState directly and on everything else through `MenuHandlers`, so this module knows no window.
Shortcuts are application-wide: they work wherever focus is (app/shortcuts.py keeps text fields from eating them).
The Backend menu greys out the backends that cannot run here, with the reason as tooltip (asked of the engine
without loading torch, when the menu first opens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from app import recent
from app.settings import save_folder, set_snapshot_folder, snapshot_folder, writable_folder
from app.source_specs import is_stream
from app.state import AppState
from app.widgets import camera_menu as camera_menu_entries
from app.widgets.stream_dialog import ask_for_stream
from app.widgets.view_controls import LAYOUT_TITLES
from engine.contract import BACKEND_CHOICES, FILLS
from engine.errors import SaliencyError
from engine.modelfiles.card import read_card
from engine.paths import bundled_models, default_model_path
from engine.runtime.views import LAYOUTS

VIDEO_FILTER = "Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.png *.jpg *.jpeg *.bmp);;All files (*)"
SHORTCUTS = """<table>
<tr><td>Space</td><td>play / pause</td></tr>
<tr><td>Left / Right</td><td>previous / next frame (held: frame after frame)</td></tr>
<tr><td>Home / End</td><td>first / last frame</td></tr>
<tr><td>Ctrl+O</td><td>open a video or image (or drop a file on the window)</td></tr>
<tr><td>Ctrl+S / Ctrl+Shift+S</td><td>save a snapshot (to the snapshot folder / choose where)</td></tr>
<tr><td>Ctrl+E</td><td>export the open video as an explained video</td></tr>
<tr><td>Ctrl+R</td><td>record the live view as shown (again: stop)</td></tr>
<tr><td>Ctrl+1 ... Ctrl+5</td><td>all four views / frame + mask / mask / preserved / destroyed</td></tr>
<tr><td>Ctrl+B</td><td>box around the mask</td></tr>
<tr><td>Ctrl+Q</td><td>quit</td></tr>
</table>"""


@dataclass(frozen=True)
class MenuHandlers:
    """What the menus ask of the window."""

    open_source: Callable[[str | int], object]
    save_snapshot: Callable[[str | None], object]  # None: a time-stamped file in the snapshot folder
    export_video: Callable[[], object]
    toggle_play: Callable[[], object]
    step: Callable[[int], object]  # frames forward (+) or back (-)
    save_evidence: Callable[[], object] | None = None  # the evidence timeline's rows as CSV (asks where)
    first_frame: Callable[[], object] = lambda: None
    last_frame: Callable[[], object] = lambda: None


def build(window: QMainWindow, state: AppState, store: QSettings, handlers: MenuHandlers) -> dict[str, QAction]:
    menu_bar = window.menuBar()
    assert menu_bar is not None
    actions: dict[str, QAction] = {}

    def add(menu: QMenu, name: str, text: str, slot: Callable[[], object], shortcut: str | None = None) -> QAction:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        actions[name] = action
        return action

    file_menu = _menu(menu_bar.addMenu("&File"))
    add(file_menu, "open", "&Open video or image...", lambda: _open_file(window, state, handlers), "Ctrl+O")
    add(file_menu, "open_stream", "Open s&tream...", lambda: _open_stream(window, store, handlers))
    add(
        file_menu,
        "reopen",
        "&Reopen last file",
        lambda: handlers.open_source(state.last_file) if state.last_file else None,
    )
    add(file_menu, "open_model", "Open &model...", lambda: _open_model(window, state))
    backend_menu = _menu(file_menu.addMenu("&Backend"))
    _radio_menu(backend_menu, BACKEND_CHOICES, lambda: state.backend, lambda name: state.update(backend=name), window)
    backend_menu.aboutToShow.connect(lambda: _grey_out_unavailable(backend_menu))
    file_menu.addSeparator()
    add(file_menu, "snapshot", "&Save snapshot", lambda: handlers.save_snapshot(None), "Ctrl+S")
    add(file_menu, "snapshot_as", "Save snapshot &as...", lambda: _snapshot_as(window, store, handlers), "Ctrl+Shift+S")
    add(file_menu, "export", "&Export explained video...", handlers.export_video, "Ctrl+E")
    record = add(
        file_menu, "record", "&Record live view", lambda: state.update(recording=not state.recording), "Ctrl+R"
    )
    record.setCheckable(True)
    state.subscribe(lambda changed: record.setChecked(state.recording) if "recording" in changed else None)
    if handlers.save_evidence is not None:
        add(file_menu, "save_evidence", "Save e&vidence as CSV...", handlers.save_evidence)
    file_menu.addSeparator()
    add(file_menu, "quit", "&Quit", window.close, "Ctrl+Q")

    model_menu = _menu(menu_bar.addMenu("&Model"))
    model_menu.aboutToShow.connect(lambda: _fill_model_menu(model_menu, state))

    camera_menu = _menu(menu_bar.addMenu("&Camera"))
    camera_menu.aboutToShow.connect(lambda: camera_menu_entries.fill(camera_menu, state, handlers.open_source))

    playback = _menu(menu_bar.addMenu("&Playback"))
    add(playback, "play", "&Play / pause", handlers.toggle_play, "Space")
    add(playback, "previous", "P&revious frame", lambda: handlers.step(-1), "Left")
    add(playback, "next", "&Next frame", lambda: handlers.step(+1), "Right")
    add(playback, "first", "&First frame", handlers.first_frame, "Home")
    add(playback, "last", "&Last frame", handlers.last_frame, "End")

    view = _menu(menu_bar.addMenu("&View"))
    for number, name in enumerate(LAYOUTS, start=1):
        add(view, f"layout_{name}", LAYOUT_TITLES[name], partial(state.update, layout=name), f"Ctrl+{number}")
    add(view, "box", "&Box around the mask", lambda: state.update(show_box=not state.show_box), "Ctrl+B")
    _radio_menu(_menu(view.addMenu("&Fill")), FILLS, lambda: state.fill, lambda name: state.update(fill=name), window)
    view.addSeparator()
    _toggle(view, actions, state, "steady_class", "&Steady auto class", STEADY_CLASS_TIP)
    _toggle(view, actions, state, "smooth_mask", "S&mooth mask over time", SMOOTH_MASK_TIP)

    help_menu = _menu(menu_bar.addMenu("&Help"))
    add(
        help_menu,
        "shortcuts",
        "&Keyboard shortcuts",
        lambda: QMessageBox.information(window, "Keyboard shortcuts", SHORTCUTS),
    )
    return actions


STEADY_CLASS_TIP = (
    "In Auto, the class explained changes only when another leads it clearly (by 0.1) on 3 frames in a row, "
    "instead of following the top prediction frame by frame"
)
SMOOTH_MASK_TIP = "The mask is averaged with the last one while playing (half each): steadier, about a frame behind"


def _toggle(menu: QMenu, actions: dict[str, QAction], state: AppState, name: str, text: str, tip: str) -> None:
    """A checkable entry bound to a flag of AppState, both ways."""
    action = QAction(text, menu)
    action.setCheckable(True)
    action.setChecked(bool(getattr(state, name)))
    action.setToolTip(tip)
    action.setStatusTip(tip)
    action.toggled.connect(lambda checked: state.update(**{name: checked}))
    state.subscribe(lambda changed: action.setChecked(bool(getattr(state, name))) if name in changed else None)
    menu.setToolTipsVisible(True)
    menu.addAction(action)
    actions[name] = action


def _grey_out_unavailable(menu: QMenu) -> None:
    """Backends that cannot run here are greyed out with the reason as tooltip (checked once: installing a
    runtime takes a restart anyway)."""
    if menu.property("availability_shown"):
        return
    from engine.api import backend_availability  # torch-free (runtime imports only)

    availability = backend_availability()
    menu.setToolTipsVisible(True)
    for action in menu.actions():
        ok, reason = availability.get(action.text(), (True, ""))
        action.setEnabled(ok)
        action.setToolTip(reason if ok else f"cannot run here: {reason}")
    menu.setProperty("availability_shown", True)


def _menu(menu: QMenu | None) -> QMenu:
    assert menu is not None
    return menu


def _radio_menu(
    menu: QMenu,
    names: tuple[str, ...],
    current: Callable[[], str],
    choose: Callable[[str], object],
    window: QMainWindow,
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


def _fill_model_menu(menu: QMenu, state: AppState) -> None:
    """The bundled models, the one in use checked; choosing one reloads the pipeline with it (no restart). Any
    other model file is opened with File > Open model..."""
    menu.clear()
    current = Path(state.model_path) if state.model_path else default_model_path()
    for path in bundled_models():
        action = menu.addAction(f"{path.stem} ({_blackbox_of(path)})")
        assert action is not None
        action.setCheckable(True)
        action.setChecked(path.resolve() == current.resolve())
        action.triggered.connect(lambda _checked=False, path=path: state.update(model_path=str(path)))


def _blackbox_of(path: Path) -> str:
    """The black box a model file explains, from its card (the header only: milliseconds, no torch)."""
    try:
        return str(read_card(path)["blackbox"]["name"])
    except (SaliencyError, KeyError, TypeError):
        return "unreadable card"


def _open_file(window: QMainWindow, state: AppState, handlers: MenuHandlers) -> None:
    start = str(Path(state.last_file).parent) if state.last_file else ""
    path, _ = QFileDialog.getOpenFileName(window, "Open a video or an image", start, VIDEO_FILTER)
    if path:
        handlers.open_source(path)


def _open_stream(window: QMainWindow, store: QSettings, handlers: MenuHandlers) -> None:
    """A stream's address, typed (the last stream opened to start from), opened as --source opens it."""
    last = next((entry for entry in recent.recent_files(store) if is_stream(entry)), "")
    address = ask_for_stream(window, last)
    if address:
        handlers.open_source(address)


def _open_model(window: QMainWindow, state: AppState) -> None:
    # a model file, or the card of an exported model folder (saliency-engine export), which needs no PyTorch
    path, _ = QFileDialog.getOpenFileName(
        window, "Open a masking model", "", "Models (*.safetensors *.card.json);;Exported models (*.card.json)"
    )
    if path:
        state.update(model_path=path)


def _snapshot_as(window: QMainWindow, store: QSettings, handlers: MenuHandlers) -> None:
    folder = snapshot_folder(store)
    can_write = writable_folder(folder) or (not folder.exists() and writable_folder(folder.parent))
    if not can_write:  # the dialog opens where the snapshot can be written
        folder = save_folder(store)
    path, _ = QFileDialog.getSaveFileName(window, "Save snapshot", str(folder), "PNG (*.png)")
    if path:
        set_snapshot_folder(store, Path(path).parent)
        handlers.save_snapshot(path)
