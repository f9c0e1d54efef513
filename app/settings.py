"""Remembered between runs with QSettings: last file, class, view, fill, opacity, backend (AppState.PERSISTENT),
the snapshot folder and the folder saved to last. Tests pass their own QSettings file; the app uses the user's."""

from __future__ import annotations

import os
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
    if stored and (writable_folder(Path(str(stored))) or not Path(str(stored)).exists()):
        return Path(str(stored))
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation) or str(Path.home())
    return Path(pictures) / "live-saliency"


def set_snapshot_folder(settings: QSettings, folder: Path) -> None:
    settings.setValue("snapshot_folder", str(folder))


def save_folder(settings: QSettings) -> Path:
    """Where a Save dialog (an export, evidence as CSV) opens: the folder saved to last, else the user's Videos
    folder, else home; each only when it is a folder this user can write to (a video's own folder may not be)."""
    stored = settings.value("save_folder")
    videos = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    for candidate in (str(stored) if stored else "", videos):
        if candidate and writable_folder(Path(candidate)):
            return Path(candidate)
    return Path.home()


def remember_save_folder(settings: QSettings, saved: Path) -> None:
    """A file was saved at `saved`: its folder is where the next Save dialog opens."""
    settings.setValue("save_folder", str(saved.parent))


def writable_folder(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
