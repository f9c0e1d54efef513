"""Rendering explained videos: the views, interrupted renders, bad inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.api import Explainer
from engine.errors import VideoError
from engine.render import render, render_frame
from engine.video import VideoReader
from tests.app.conftest import write_video


@pytest.fixture(scope="module")
def explainer(untrained_masker, blackbox):
    with Explainer.from_masker(untrained_masker, blackbox, "onnxruntime", batch_sizes=(1, 4)) as explainer:
        yield explainer


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory, data_root) -> Path:
    """12 frames of realshort.mp4 (320 x 240)."""
    return data_root / "videos" / "realshort.mp4"


def read_back(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.mark.parametrize("view", ["grid", "overlay"])
def test_render_writes_every_frame(explainer, small_clip, tmp_path, view: str) -> None:
    result = render(explainer, small_clip, tmp_path / f"{view}.mp4", view=view, batch=4, max_frames=6, progress=False)
    assert result.complete and result.frames == 6
    frames = read_back(result.path)
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)


def test_interrupted_render_leaves_a_playable_file(explainer, small_clip, tmp_path) -> None:
    def stop_after_five(written: int) -> None:
        if written == 5:
            raise KeyboardInterrupt

    output = tmp_path / "interrupted.mp4"
    with pytest.raises(KeyboardInterrupt):
        render(explainer, small_clip, output, view="preserved", batch=4, progress=False, on_frame=stop_after_five)
    frames = read_back(output)
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)


def test_render_keeps_the_frames_of_a_truncated_video(explainer, data_root, tmp_path) -> None:
    source = data_root / "videos" / "box.mp4"
    truncated = tmp_path / "half.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with VideoReader(truncated) as reader:  # the first half of the bytes still holds frames
        readable = sum(1 for _ in reader)
    assert 0 < readable < 455
    result = render(explainer, truncated, tmp_path / "out.mp4", view="overlay", batch=4, max_frames=3, progress=False)
    assert result.frames == 3 and len(read_back(result.path)) == 3


def test_a_truncated_video_is_rendered_to_its_end_and_says_so_once(explainer, tmp_path, capsys) -> None:
    whole = write_video(tmp_path / "whole.avi", 40, fourcc="MJPG")
    truncated = tmp_path / "half.avi"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the header still says 40 frames
    notes: list[str] = []
    result = render(
        explainer, truncated, tmp_path / "out.mp4", view="grid", batch=4, progress=False, on_note=notes.append
    )
    assert 0 < result.frames < 40 and result.complete
    assert notes == [
        f"half.avi ends early: {result.frames} of the 40 frames its header announces can be read "
        "(a truncated or damaged file); the frames before the damage are used"
    ]
    render(explainer, truncated, tmp_path / "out.mp4", view="overlay", batch=4, progress=False)  # the CLI's way
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"note: {notes[0]}"]  # one line on stderr
    render(explainer, whole, tmp_path / "whole-out.mp4", view="overlay", batch=4, progress=False)
    assert capsys.readouterr().err == ""  # a whole file says nothing


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 10])
def test_bad_inputs_are_clear_errors(explainer, tmp_path, content: bytes) -> None:
    source = tmp_path / "bad.mp4"
    source.write_bytes(content)
    with pytest.raises(VideoError, match="empty file|not a video"):
        render(explainer, source, tmp_path / "out.mp4", progress=False)
    with pytest.raises(VideoError, match="does not exist"):
        render(explainer, tmp_path / "missing.mp4", tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_compose_grid_has_all_four_views(explainer) -> None:
    frame = np.zeros((121, 161, 3), np.uint8)
    frame[30:90, 40:120] = (220, 60, 20)
    explanation = explainer.explain(frame, 409, evidence=False)
    grid = render_frame(explanation, "grid")
    assert grid.shape == (120, 160, 3)
    top_right = cv2.resize(explanation.mask_image, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(grid[:60, 80:].astype(int) - top_right.astype(int)).mean() < 8  # captions aside
    with pytest.raises(ValueError, match="view"):
        render_frame(explanation, "sideways")
