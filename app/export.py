"""Export the open video as an explained video through the engine's renderer (written in a worker thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.window import MainWindow


def export_video(window: MainWindow) -> None:
    window.report_problem("Export", "Exporting needs the engine's renderer, which this build does not have yet.")
