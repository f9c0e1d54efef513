"""Help > What am I looking at?: the four views of the frame on screen, what each one means in plain words, and
the live numbers of that frame (refreshed while the dialog is open)."""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.images import to_qimage
from engine.contract import Explanation
from engine.runtime.views import compose

_PICTURE_WIDTH = 480  # pixels of the grid of four views in the dialog


@dataclass(frozen=True)
class FrameNumbers:
    """What the dialog says about the frame on screen."""

    class_name: str
    class_index: int
    frame: float  # the black box's probability of the class on the whole frame (or region)
    preserved: float | None  # on Phi(X, M); None: not checked (yet, or the evidence check is off)
    destroyed: float | None  # on Phi(X, 1 - M)
    mask_area: float  # the mask's mean, 0..1: how much of the picture it keeps
    region: tuple[int, int, int, int] | None = None

    @classmethod
    def of(
        cls,
        explanation: Explanation,
        checked: dict[str, float] | None,
        region: tuple[int, int, int, int] | None = None,
    ) -> FrameNumbers:
        checked = checked or explanation.probabilities or {}
        return cls(
            explanation.target_name,
            explanation.target,
            explanation.target_probability,
            checked.get("preserved"),
            checked.get("destroyed"),
            float(explanation.mask.mean()),
            region,
        )


def explanation_text(numbers: FrameNumbers | None) -> str:
    """The dialog's words (HTML), with the numbers of the frame on screen."""
    if numbers is None:
        return "<p>No frame has been explained yet: open a video or an image (Ctrl+O) and load a model.</p>"
    name = numbers.class_name
    where = "the frame" if numbers.region is None else "the region you chose (Esc: the whole frame)"
    preserved = _probability(numbers.preserved)
    destroyed = _probability(numbers.destroyed)
    return f"""
<p>The black box (the image classifier being explained) sees <b>{name}</b> (class {numbers.class_index}) in {where}
with probability <b>{numbers.frame:.3f}</b>. The masking model marks the pixels that this answer rests on: the
<b>mask</b> (top right), red where it matters, blue where it does not; <b>Frame + mask</b> (top left) lays it over
the picture. The mask keeps <b>{numbers.mask_area:.0%}</b> of the picture.</p>
<p><b>Preserved &Phi;(X, M)</b> (bottom left) keeps only what the mask marks and blurs or blanks the rest. It answers:
<i>is this small part enough?</i> It is the <b>smallest sufficient region</b>: the least of the picture from which
the black box still recognises {name}. Now: <b>{preserved}</b> (a good mask keeps this close to {numbers.frame:.3f}).
</p>
<p><b>Destroyed &Phi;(X, 1&minus;M)</b> (bottom right) removes what the mask marks and keeps the rest. It answers:
<i>is this part necessary?</i> It is the <b>smallest destroying region</b>: the least one has to remove so that the
black box no longer sees {name}. Now: <b>{destroyed}</b> (a good mask brings this near 0).</p>
<p>So: a small mask, a high preserved and a low destroyed probability mean the explanation found what the black box
looks at. Drag a rectangle on a view to explain only that region.</p>
"""


def _probability(value: float | None) -> str:
    return "not checked yet (the evidence check is off or still running)" if value is None else f"{value:.3f}"


class HelpDialog(QDialog):
    """Not modal: it stays open beside the player and follows the frame on screen (`show_frame`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What am I looking at?")
        self.numbers: FrameNumbers | None = None
        self.picture = QLabel("no frame explained yet")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumWidth(_PICTURE_WIDTH)
        self.text = QLabel(explanation_text(None))
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setMinimumWidth(420)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop)
        body = QHBoxLayout()
        body.addWidget(self.picture, alignment=Qt.AlignmentFlag.AlignTop)
        body.addWidget(self.text, stretch=1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(buttons)

    def show_frame(self, explanation: Explanation | None, numbers: FrameNumbers | None) -> None:
        self.numbers = numbers
        self.text.setText(explanation_text(numbers))
        if explanation is None:
            self.picture.setText("no frame explained yet")
            return
        width = explanation.frame.shape[1]  # compose scales from the frame's size (a region may be small: enlarged)
        picture = compose(explanation, "grid", scale=_PICTURE_WIDTH / (2 * width), titles=True)
        self.picture.setPixmap(QPixmap.fromImage(to_qimage(picture)))
