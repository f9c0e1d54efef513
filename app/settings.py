"""Remembered between runs with QSettings: last file, class, view, fill, opacity, backend (AppState.PERSISTENT),
and the snapshot folder. Tests pass their own QSettings file; the app uses the user's."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSettings, QStandardPaths

from app.state import PERSISTENT, AppState

ORGANIZATION = "live-saliency"
APPLICATION = "live-saliency-app"


def user_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


def load_state(settings: QSettings, state: AppState) -> list[str]:
    """Apply remembered values to `state`; returns the names of values that were invalid (and skipped)."""
    stored = {name: settings.value(name) for name in PERSISTENT if settings.contains(name)}
    return state.apply_settings(stored)


def save_state(settings: QSettings, state: AppState) -> None:
    for name, value in state.to_settings().items():
        settings.setValue(name, value)
    settings.sync()


def snapshot_folder(settings: QSettings) -> Path:
    """Where Ctrl+S puts snapshots: remembered, else the user's Pictures folder."""
    stored = settings.value("snapshot_folder")
    if stored:
        return Path(str(stored))
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation) or str(Path.home())
    return Path(pictures) / "live-saliency"


def set_snapshot_folder(settings: QSettings, folder: Path) -> None:
    settings.setValue("snapshot_folder", str(folder))
