"""EvidencePanel: the black box's probability of the target on the frame, the preserved and the destroyed view.

The paper's smallest-sufficient-region / smallest-destroying-region check, live: a good mask keeps the class on
the preserved view (high bar) and removes it from the destroyed view (low bar). The frame's bar follows every frame;
the other two come from the evidence check, which runs about ten times a second beside the masks: the line under
the bars says which frame they were computed on. Each number stands beside its bar, never on it (a bar drawn over
its own number hid it where the bar ended).
"""

from __future__ import annotations

from collections.abc import Mapping

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGridLayout, QGroupBox, QLabel, QProgressBar, QWidget

from engine.contract import Explanation

BARELY_SEEN = 0.01  # a chosen class the black box gives less than this on the frame: its mask means little
ROWS = (("frame", "frame"), ("preserved", "preserved \u03a6(X, M)"), ("destroyed", "destroyed \u03a6(X, 1\u2212M)"))
_SCALE = 1000  # progress bars count integers


class EvidencePanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Evidence: p(target)", parent)
        self.target_label = QLabel("")
        self.target_label.setWordWrap(True)
        self.bars: dict[str, QProgressBar] = {}
        self.numbers: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.addWidget(self.target_label, 0, 0, 1, 3)
        for row, (key, title) in enumerate(ROWS, start=1):
            bar = QProgressBar()
            bar.setRange(0, _SCALE)
            bar.setTextVisible(False)
            number = QLabel("\u2013")
            number.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            number.setMinimumWidth(number.fontMetrics().horizontalAdvance("0.000") + 4)
            grid.addWidget(QLabel(title), row, 0)
            grid.addWidget(bar, row, 1)
            grid.addWidget(number, row, 2)
            self.bars[key] = bar
            self.numbers[key] = number
        self.age_label = QLabel("")
        self.age_label.setStyleSheet("color: grey;")
        self.age_label.setWordWrap(True)
        grid.addWidget(self.age_label, len(ROWS) + 1, 0, 1, 3)
        self.note_label = QLabel("")
        self.note_label.setStyleSheet("color: #c07000;")
        self.note_label.setWordWrap(True)
        self.note_label.setVisible(False)
        grid.addWidget(self.note_label, len(ROWS) + 2, 0, 1, 3)
        self.setToolTip("A good mask keeps the class on the preserved view and removes it from the destroyed one")

    def show_evidence(self, target_text: str, probabilities: Mapping[str, float] | None, age: str = "") -> None:
        """`probabilities`: None when the check is off; a missing key shows a dash (not computed yet)."""
        self.target_label.setText(target_text)
        self.age_label.setText(age)
        for key, bar in self.bars.items():
            number = self.numbers[key]
            if probabilities is None or key not in probabilities:
                bar.setValue(0)
                number.setText("off" if probabilities is None else "\u2013")
                continue
            probability = float(probabilities[key])
            bar.setValue(round(probability * _SCALE))
            number.setText(f"{probability:.3f}")

    def show_note(self, text: str) -> None:
        """A warning under the bars ("" hides it): e.g. the target is a class the black box barely sees."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    def values(self) -> dict[str, str]:
        """What the bars say, as text (for tests and screen readers)."""
        return {key: number.text() for key, number in self.numbers.items()}


def target_note(explanation: Explanation, chosen: bool, restored: bool) -> str:
    """What to know about a chosen target: that it is the one remembered from the last session, and that the black
    box barely sees it on this frame (then preserving or destroying it shows little). Nothing in "auto"."""
    if not chosen:
        return ""
    name = explanation.target_name
    notes = [f"restored from last session: {name}"] if restored else []
    probability = explanation.target_probability
    if probability < BARELY_SEEN:
        notes.append(f"the classifier barely sees '{name}' here ({probability * 100:.1f}%): the mask means little")
    return "; ".join(notes)
