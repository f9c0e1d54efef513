"""numpy RGB arrays -> QImage, in the GUI thread (QImage is not to be built in worker threads)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage


def to_qimage(array: np.ndarray) -> QImage:
    """A QImage viewing `array` ((H, W, 3) uint8 RGB or (H, W) uint8 grey) without copying.

    The QImage borrows the array's memory: keep the array alive as long as the image (ImageView does).
    """
    if not array.flags.c_contiguous:
        raise ValueError("the array must be C-contiguous (np.ascontiguousarray), the QImage borrows its memory")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        height, width = array.shape
        return QImage(array.data, width, height, array.strides[0], QImage.Format.Format_Grayscale8)  # type: ignore[call-overload]  # buffer protocol
    if array.ndim == 3 and array.shape[2] == 3:
        height, width, _ = array.shape
        return QImage(array.data, width, height, array.strides[0], QImage.Format.Format_RGB888)  # type: ignore[call-overload]  # buffer protocol
    raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {array.shape}")
