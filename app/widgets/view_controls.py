"""ViewControls: which view(s), the fill of removed pixels, overlay opacity, the 0.5 box, live evidence, and the Record
button (the live view as shown, to a video: app/export/recording.py)."""

from __future__ import annotations

from PyQt6.QtCore import QSignalBlocker, Qt
from PyQt6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QPushButton, QWidget
from superqt import QLabeledDoubleSlider

from app.state import AppState
from engine.contract import FILLS
from engine.runtime.views import LAYOUTS, VIEW_TITLES

LAYOUT_TITLES = {"grid": "All four (2\u00d72)", **VIEW_TITLES}


class ViewControls(QGroupBox):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("View", parent)
        self.state = state
        self.layout_combo = QComboBox()
        for name in LAYOUTS:
            self.layout_combo.addItem(LAYOUT_TITLES[name], name)
        self.fill_combo = QComboBox()
        for name in FILLS:
            self.fill_combo.addItem(name, name)
        self.fill_combo.setToolTip("What replaces the removed pixels in the preserved and destroyed views")
        self.opacity_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0.0, 1.0)
        self.opacity_slider.setSingleStep(0.05)  # type: ignore[arg-type]  # a double slider
        self.box_check = QCheckBox("Box around mask \u2265 0.5")
        self.evidence_check = QCheckBox("Live evidence (2 more black-box passes)")
        self.record_button = QPushButton("\u25cf Record live view")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip(
            "Record the views as shown, with their caption, while the source plays (Ctrl+R); again to stop"
        )
        form = QFormLayout(self)
        form.addRow("Show", self.layout_combo)
        form.addRow("Fill", self.fill_combo)
        form.addRow("Opacity", self.opacity_slider)
        form.addRow(self.box_check)
        form.addRow(self.evidence_check)
        form.addRow(self.record_button)

        self.layout_combo.currentIndexChanged.connect(lambda row: state.update(layout=self.layout_combo.itemData(row)))
        self.fill_combo.currentIndexChanged.connect(lambda row: state.update(fill=self.fill_combo.itemData(row)))
        self.opacity_slider.valueChanged.connect(lambda value: state.update(opacity=value))
        self.box_check.toggled.connect(lambda checked: state.update(show_box=checked))
        self.evidence_check.toggled.connect(lambda checked: state.update(evidence=checked))
        self.record_button.toggled.connect(lambda checked: state.update(recording=checked))
        state.subscribe(self._on_state)
        self._on_state({"layout", "fill", "opacity", "show_box", "evidence", "recording"})

    def _on_state(self, changed: set[str]) -> None:
        state = self.state
        widgets = (
            self.layout_combo,
            self.fill_combo,
            self.opacity_slider,
            self.box_check,
            self.evidence_check,
            self.record_button,
        )
        blockers = [QSignalBlocker(widget) for widget in widgets]  # showing the state is not a user's choice
        if "layout" in changed:
            self.layout_combo.setCurrentIndex(self.layout_combo.findData(state.layout))
        if "fill" in changed:
            self.fill_combo.setCurrentIndex(self.fill_combo.findData(state.fill))
        if "opacity" in changed:
            self.opacity_slider.setValue(state.opacity)
        if "show_box" in changed:
            self.box_check.setChecked(state.show_box)
        if "evidence" in changed:
            self.evidence_check.setChecked(state.evidence)
        if "recording" in changed:
            self.record_button.setChecked(state.recording)
            self.record_button.setText("\u25a0 Stop recording" if state.recording else "\u25cf Record live view")
            self.record_button.setStyleSheet("color: #d03030; font-weight: bold;" if state.recording else "")
        del blockers
