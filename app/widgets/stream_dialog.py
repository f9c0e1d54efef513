"""File > Open stream...: one line for a stream's address (udp://, tcp://, rtsp://, http(s)://), checked as it is
typed (app/source_specs.py: its form only, nothing is opened); Open is enabled once the form is right, and a line
under the field says what is wrong until then."""

from __future__ import annotations

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from app.source_specs import SCHEMES_TEXT, stream_problem

PLACEHOLDER = "rtsp://192.168.1.20:554/stream"


class StreamDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, address: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Open stream")
        self.setMinimumWidth(520)
        intro = QLabel(f"The address of a live stream ({SCHEMES_TEXT}):")
        self.field = QLineEdit(address)
        self.field.setPlaceholderText(PLACEHOLDER)
        self.field.setClearButtonEnabled(True)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b00020")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept_if_valid)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (intro, self.field, self.problem, self.buttons):
            layout.addWidget(widget)
        self.field.textChanged.connect(self._check)
        self._check(address, quiet=not address)

    @property
    def address(self) -> str:
        return self.field.text().strip()

    def _check(self, text: str, quiet: bool = False) -> bool:
        """Open enabled when the form is right; the reason shown when not (not yet for an empty field at first)."""
        problem = stream_problem(text)
        self.problem.setText("" if problem is None or quiet else problem)
        button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        if button is not None:
            button.setEnabled(problem is None)
        return problem is None

    def _accept_if_valid(self) -> None:
        if self._check(self.field.text()):  # Enter in the field comes here too, Open disabled or not
            self.accept()


def ask_for_stream(parent: QWidget | None, address: str = "") -> str | None:
    """The address typed and accepted, or None (cancelled)."""
    dialog = StreamDialog(parent, address)
    return dialog.address if dialog.exec() == QDialog.DialogCode.Accepted else None
