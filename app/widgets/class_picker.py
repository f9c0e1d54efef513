"""ClassPicker: the target class, from a searchable list of the black box's classes ("Auto" first), and the
black box's top-5 on the current frame as buttons that make one the target. Bound to AppState.target."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QSignalBlocker, pyqtSignal
from PyQt6.QtWidgets import QGroupBox, QPushButton, QVBoxLayout, QWidget
from superqt import QSearchableComboBox

from app.state import AppState
from engine.contract import AUTO, ClassInfo

AUTO_TEXT = "Auto (top prediction)"


def class_text(info: ClassInfo) -> str:
    """'tabby, tabby cat  (281)': all synonyms, so typing any of them (or the index) finds the class."""
    return f"{info.names}  ({info.index})"


class ClassPicker(QGroupBox):
    not_found = pyqtSignal(str)  # the user typed something no class matches

    def __init__(self, state: AppState, classes: Sequence[ClassInfo], parent: QWidget | None = None) -> None:
        super().__init__("Target class", parent)
        self.state = state
        self.combo = QSearchableComboBox()
        self.combo.setMaxVisibleItems(20)
        self.combo.setToolTip("Type part of a class name (e.g. 'tabby') or its index; Enter picks the first match")
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        self.set_classes(classes)
        self.combo.currentIndexChanged.connect(self._on_index_changed)
        line_edit = self.combo.lineEdit()
        assert line_edit is not None
        line_edit.returnPressed.connect(self._accept_typed_text)
        state.subscribe(self._on_state)

    def set_classes(self, classes: Sequence[ClassInfo]) -> None:
        """Fill the list (a model for another black box brings other classes); keeps the target if it exists."""
        with QSignalBlocker(self.combo):
            self.combo.clear()
            self.combo.addItem(AUTO_TEXT, AUTO)
            for info in classes:
                self.combo.addItem(class_text(info), info.index)
        self.class_count = len(classes)
        if self.state.target >= self.class_count:
            self.state.update(target=AUTO)
        self._show_target()

    def _on_index_changed(self, row: int) -> None:
        if row < 0:
            return
        self.state.update(target=int(self.combo.itemData(row)))

    def _accept_typed_text(self) -> None:
        """Enter: the item whose text is typed, else the first item containing it (as the completer lists)."""
        typed = self.combo.currentText().strip()
        row = self.combo.findText(typed)
        if row < 0 and typed:
            lowered = typed.lower()
            row = next((i for i in range(self.combo.count()) if lowered in self.combo.itemText(i).lower()), -1)
        if row < 0:
            self.not_found.emit(f"No class matches {typed!r}")
            self._show_target()
            return
        self.combo.setCurrentIndex(row)
        self._on_index_changed(row)
        self._show_target()  # the edit shows the full name, not what was typed

    def _on_state(self, changed: set[str]) -> None:
        if "target" in changed:
            self._show_target()

    def _show_target(self) -> None:
        row = self.combo.findData(self.state.target)
        with QSignalBlocker(self.combo):
            self.combo.setCurrentIndex(max(row, 0))
            self.combo.setEditText(self.combo.itemText(max(row, 0)))


class TopPredictions(QGroupBox):
    """The black box's five most probable classes on the frame; a click explains that class."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Black box top-5 (click to explain)", parent)
        self.state = state
        self.buttons: list[QPushButton] = []
        self._indices: list[int] = []
        layout = QVBoxLayout(self)
        layout.setSpacing(2)
        for row in range(5):
            button = QPushButton("")
            button.setFlat(True)
            button.setStyleSheet("text-align: left; padding: 2px 6px;")
            button.clicked.connect(lambda _checked=False, row=row: self._choose(row))
            layout.addWidget(button)
            self.buttons.append(button)

    def show_predictions(self, top5: Sequence[tuple[int, str, float]], target: int | None) -> None:
        self._indices = [index for index, _name, _probability in top5]
        for row, button in enumerate(self.buttons):
            if row < len(top5):
                index, name, probability = top5[row]
                marker = "\u25b6 " if index == target else "   "
                button.setText(f"{marker}{probability * 100:5.1f}%  {name}  ({index})")
                button.setEnabled(True)
            else:
                button.setText("")
                button.setEnabled(False)

    def _choose(self, row: int) -> None:
        if row < len(self._indices):
            self.state.update(target=self._indices[row])
