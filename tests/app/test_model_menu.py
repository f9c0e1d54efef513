"""The Model menu lists the bundled models and switches between them while the video plays (no restart)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

WAIT_MS = 60_000


@pytest.fixture
def two_bundled_models(tmp_path: Path, untrained_model_file: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """An assets folder holding two model folders laid out like the bundled ones (real model files)."""
    import engine.paths

    models = []
    for name in ("first-model", "second-model"):
        folder = tmp_path / "assets" / "models" / name
        folder.mkdir(parents=True)
        models.append(Path(shutil.copy(untrained_model_file, folder / f"{name}.safetensors")))
    monkeypatch.setattr(engine.paths, "ASSETS", tmp_path / "assets")
    monkeypatch.setenv("SALIENCY_MODEL", str(models[0]))  # the default model of this installation
    return models


def test_the_model_menu_switches_between_the_bundled_models_without_a_restart(
    qtbot, make_window, video_file, two_bundled_models
):
    from PyQt6.QtWidgets import QMenu

    first, second = two_bundled_models
    window = make_window(str(video_file), model=None)  # None: the default model
    qtbot.waitUntil(lambda: "first-model" in window.status.model_label.full_text(), timeout=WAIT_MS)
    menus = {menu.title().replace("&", ""): menu for menu in window.menuBar().findChildren(QMenu)}
    model_menu = menus["Model"]
    model_menu.aboutToShow.emit()  # as when the user opens the menu
    entries = {action.text(): action for action in model_menu.actions()}
    assert list(entries) == ["first-model (efficientnet_lite0)", "second-model (efficientnet_lite0)"]
    assert [text for text, action in entries.items() if action.isChecked()] == ["first-model (efficientnet_lite0)"]

    entries["second-model (efficientnet_lite0)"].trigger()
    assert window.state.model_path == str(second)
    qtbot.waitUntil(lambda: "second-model" in window.status.model_label.full_text(), timeout=WAIT_MS)
    shown: list[int] = []
    window.result_shown.connect(
        lambda result: shown.append(result.frame_index) if result.explanation is not None else None
    )
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=WAIT_MS)  # explained by the new model, the video playing on
    assert window.state.playing and not window.problems
    model_menu.aboutToShow.emit()
    checked = [action.text() for action in model_menu.actions() if action.isChecked()]
    assert checked == ["second-model (efficientnet_lite0)"]
