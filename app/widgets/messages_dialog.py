"""Help > Messages: every message the status bar showed in this session, whole and time-stamped, newest last (the bar
cuts a long one to its width; here it can be read, selected and copied)."""

from __future__ import annotations

from collections.abc import Iterable

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget


class MessagesDialog(QDialog):
    def __init__(self, lines: Iterable[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Messages")
        self.resize(760, 360)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.show_lines(lines)

    def show_lines(self, lines: Iterable[str]) -> None:
        self.text.setPlainText("\n".join(lines))
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())  # type: ignore[union-attr]

    def add(self, line: str) -> None:
        """A new message while the dialog is open."""
        self.text.appendPlainText(line)

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()
