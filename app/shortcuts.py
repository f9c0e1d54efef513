"""Keyboard shortcuts that work wherever focus is, and focus that goes back to the views.

The menus' shortcuts are application-wide (app/menus.py), but a text field still claims the keys it uses before
any shortcut sees them (Qt's ShortcutOverride): the class search would keep Space and the arrows, and Ctrl+E would
move its cursor to the end of the line. `ShortcutGuard` decides for the fields of the main window instead:
- a shortcut with Ctrl (or Alt) always wins: a field has no better use for it here;
- the player's keys (Space, Left / Right, Home / End) go to a field only while something is being typed into it,
  so that a search can still contain a space; otherwise they act on the player.
After a class is picked, focus goes back to the views; a click on the views takes it there too.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtGui import QAction, QKeyEvent, QKeySequence
from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QMainWindow, QWidget

from app.widgets.class_picker import ClassPicker

PLAYER_KEYS = frozenset({Qt.Key.Key_Space, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End})
_COMMAND_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


class ShortcutGuard(QObject):
    """An event filter on the window's text fields: the window's shortcuts win over them (see the module's notes)."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        if event is None or event.type() != QEvent.Type.ShortcutOverride or not isinstance(event, QKeyEvent):
            return False
        field = watched  # the focus object: a text field, or an editable combo box (which hands keys to its field)
        if isinstance(field, QComboBox):
            field = field.lineEdit()
        if not isinstance(field, (QLineEdit, QAbstractSpinBox)):
            return False
        if not self.window.isAncestorOf(field) or not self._is_shortcut(event):
            return False
        command = bool(event.modifiers() & _COMMAND_MODIFIERS)
        typing = isinstance(field, QLineEdit) and _typing_into(field)
        if command or (Qt.Key(event.key()) in PLAYER_KEYS and not typing):
            event.ignore()  # not claimed by the field: the shortcut runs
            return True
        return False

    def _is_shortcut(self, event: QKeyEvent) -> bool:
        pressed = QKeySequence(event.keyCombination())
        return any(
            shortcut.matches(pressed) == QKeySequence.SequenceMatch.ExactMatch
            for action in self.window.findChildren(QAction)
            for shortcut in action.shortcuts()
        )


def _typing_into(field: QLineEdit) -> bool:
    """Whether something is being typed: a combo box's field no longer shows its current item (a search under
    way; its completer rewrites the text, so the field's own "modified" flag cannot tell), another field was
    edited since its text was set."""
    combo = field.parent()
    if isinstance(combo, QComboBox) and combo.lineEdit() is field:
        return field.text() != combo.itemText(combo.currentIndex())
    return field.isModified()


def install(window: QMainWindow, views: QWidget, class_picker: ClassPicker) -> ShortcutGuard:
    """Guard the window's shortcuts, send focus to `views` after a class is picked, and let a click there take it."""
    guard = ShortcutGuard(window)
    # on the fields themselves, not on the application: a Python filter that outlives the window can be called
    # while the application is torn down
    for field in (*window.findChildren(QLineEdit), *window.findChildren(QAbstractSpinBox)):
        field.installEventFilter(guard)
    for combo in window.findChildren(QComboBox):
        if combo.isEditable():
            combo.installEventFilter(guard)
    views.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    class_picker.picked.connect(lambda: views.setFocus(Qt.FocusReason.OtherFocusReason))
    return guard
