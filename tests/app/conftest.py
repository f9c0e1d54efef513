"""App fixtures: offscreen Qt, settings in a temporary file (never the user's), small real video files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

FRAME_SIZE = (96, 64)  # (width, height): the model resizes to 224 anyway; small files decode fast


def write_video(path: Path, frames: int, fourcc: str = "mp4v", fps: float = 25.0) -> Path:
    """A real encoded video whose every frame differs: a colour ramp, a moving square and the frame number."""
    width, height = FRAME_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for index in range(frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[:] = (index * 5 % 255, 80, 255 - index * 5 % 255)
        x = index * 3 % (width - 16)
        image[20:36, x : x + 16] = 255
        cv2.putText(image, str(index), (2, height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
        writer.write(image)
    writer.release()
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Sequential decode, RGB: the definition of 'frame K'."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def needs_pyav_as_opencv(path: Path) -> None:
    """Skip unless PyAV converts `path`'s first frame to the same pixels as OpenCV: only then are the source's jumps
    PyAV's (app.playback.file_seeker), which holds when both wheels carry the same FFmpeg
    (tests/app/test_file_seeker.py)."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0])).to_ndarray(format="bgr24")
    if not np.array_equal(frame, cv2.cvtColor(decode_all(path)[0], cv2.COLOR_RGB2BGR)):
        pytest.skip("PyAV converts colours otherwise than OpenCV here (another FFmpeg): jumps go the OpenCV way")


@pytest.fixture(scope="session")
def video_file(tmp_path_factory) -> Path:
    """40 frames, MPEG-4 part 2 (with predicted frames, so seeking is real work)."""
    return write_video(tmp_path_factory.mktemp("videos") / "clip.mp4", 40)


@pytest.fixture(scope="session")
def video_frames(video_file) -> list[np.ndarray]:
    return decode_all(video_file)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    """Whatever creates a QSettings without a file (QSettings(org, app)) writes under tmp, not in ~/.config."""
    from PyQt6.QtCore import QSettings, QStandardPaths

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    QStandardPaths.setTestModeEnabled(True)
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(settings_format, QSettings.Scope.UserScope, str(tmp_path / "config"))
    yield


@pytest.fixture
def store(tmp_path):
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, store, untrained_model_file) -> Iterator[Callable]:
    """make_window(source, **state) -> a started MainWindow on the untrained test model (torch CPU).

    Every window is closed at the end and its worker must have stopped."""
    from app.explaining.worker import PipelineWorker
    from app.state import AppState
    from app.window import MainWindow

    windows = []

    def make(
        source,
        *,
        realtime: bool = True,
        backend: str = "torch-cpu",
        model: Path | None | str = "untrained",
        **state_values,
    ):
        """model: a path, None for the bundled default, or "untrained" for the test model."""
        model_path = str(untrained_model_file) if model == "untrained" else (None if model is None else str(model))
        state = AppState(model_path=model_path, backend=backend, evidence=False)
        state.update(**state_values)
        window = MainWindow(state, store, PipelineWorker(realtime=realtime))
        qtbot.addWidget(window)
        window.show()
        window.start(source)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.worker.isFinished(), "the pipeline thread outlived its window"
