"""Menu entries added to the window's menus (app/menus.py builds those): File > Recent; View > Explain the
whole frame (Esc), Keep the aspect ratio, Caption on snapshots and exports; Help > What am I looking at?, Messages

They act on AppState directly and on the window through `ExtraHandlers`, like app/menus.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QSettings
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu

from app import recent
from app.state import AppState


@dataclass(frozen=True)
class ExtraHandlers:
    open_source: Callable[[str], object]
    note: Callable[[str], object]  # a line for the status bar
    what_am_i_looking_at: Callable[[], object]
    messages: Callable[[], object] = lambda: None  # every message of the session, whole


def build(window: QMainWindow, state: AppState, store: QSettings, handlers: ExtraHandlers) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}
    file_menu, view_menu, help_menu = (_menu_titled(window, title) for title in ("&File", "&View", "&Help"))

    recent_menu = QMenu("Recen&t", window)
    recent_menu.aboutToShow.connect(lambda: recent.fill_menu(recent_menu, store, handlers.open_source, handlers.note))
    file_menu.insertMenu(_action_after(file_menu, "&Reopen last file"), recent_menu)
    actions["recent"] = _action(recent_menu.menuAction())

    view_menu.addSeparator()
    whole = QAction("Explain the &whole frame", window)
    whole.setShortcut(QKeySequence("Esc"))
    whole.setToolTip("Drag a rectangle on a view to explain only that region; Esc returns to the whole frame")
    whole.triggered.connect(lambda _checked=False: state.update(region=None))
    view_menu.addAction(whole)
    actions["whole_frame"] = whole
    actions["keep_aspect"] = _toggle(
        view_menu,
        "Keep the &aspect ratio (pad to square)",
        lambda: state.aspect == "pad",
        lambda on: state.update(aspect="pad" if on else "stretch"),
        window,
    )
    actions["caption"] = _toggle(
        view_menu,
        "&Caption on snapshots and exports",
        lambda: state.caption,
        lambda on: state.update(caption=on),
        window,
    )

    explain = QAction("&What am I looking at?", window)
    explain.setShortcut(QKeySequence("F1"))
    explain.triggered.connect(lambda _checked=False: handlers.what_am_i_looking_at())
    help_menu.insertAction(help_menu.actions()[0] if help_menu.actions() else None, explain)
    actions["what"] = explain
    messages = QAction("&Messages", window)
    messages.setToolTip("Every message of this session, whole (the status bar cuts a long one to its width)")
    messages.triggered.connect(lambda _checked=False: handlers.messages())
    help_menu.addAction(messages)
    actions["messages"] = messages
    return actions


def _menu_titled(window: QMainWindow, title: str) -> QMenu:
    bar = window.menuBar()
    assert bar is not None
    for action in bar.actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and action.text() == title:
            return menu
    raise LookupError(f"the window has no menu {title!r}")


def _action_after(menu: QMenu, text: str) -> QAction | None:
    """The entry after the one called `text` (insert before it); None: the end."""
    entries = menu.actions()
    for index, action in enumerate(entries):
        if action.text() == text:
            return entries[index + 1] if index + 1 < len(entries) else None
    return None


def _action(action: QAction | None) -> QAction:
    assert action is not None
    return action


def _toggle(
    menu: QMenu, text: str, current: Callable[[], bool], choose: Callable[[bool], object], window: QMainWindow
) -> QAction:
    """A checkable entry that shows the current value each time the menu opens."""
    action = QAction(text, window)
    action.setCheckable(True)
    action.setChecked(current())
    action.triggered.connect(lambda checked: choose(bool(checked)))
    menu.addAction(action)
    menu.aboutToShow.connect(lambda: action.setChecked(current()))
    return action
