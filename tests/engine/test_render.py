"""Rendering explained videos: H.264 files with their per-frame table, the views, box and caption, interrupted
renders, bad inputs, the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.__main__ import main
from engine.api import Explainer
from engine.errors import VideoError
from engine.runtime.temporal import Steadiness
from engine.runtime.views import BOX_COLOUR, compose
from engine.tools.render import render, render_frame, table_path
from engine.video.frametable import COLUMNS
from engine.video.reader import VideoReader
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


def read_with_pyav(path: Path) -> tuple[str, list[np.ndarray]]:
    """(codec name, RGB frames) as PyAV (FFmpeg, as browsers' players) decodes the file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]


def table_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("view", ["grid", "overlay"])
def test_render_writes_h264_and_a_row_per_frame(explainer, small_clip, tmp_path, view: str) -> None:
    result = render(explainer, small_clip, tmp_path / f"{view}.mp4", view=view, batch=4, max_frames=6, progress=False)
    assert result.complete and result.frames == 6
    codec, decoded = read_with_pyav(result.path)
    assert codec == "h264" and len(decoded) == 6
    frames = read_back(result.path)
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)
    assert result.table == table_path(result.path) == tmp_path / f"{view}.csv"
    rows = table_rows(result.table)
    assert tuple(rows[0]) == COLUMNS and [int(row["frame"]) for row in rows] == list(range(6))
    fps = cv2.VideoCapture(str(small_clip)).get(cv2.CAP_PROP_FPS)
    assert [float(row["time_s"]) for row in rows] == pytest.approx([index / fps for index in range(6)], abs=1e-5)
    for row in rows:
        assert explainer.classes[int(row["class_index"])].display_name == row["class_name"]
        assert all(0.0 <= float(row[name]) <= 1.0 for name in ("p_frame", "p_preserved", "p_destroyed"))


def test_the_table_holds_each_frame_s_evidence_and_mask(explainer, small_clip, tmp_path) -> None:
    result = render(
        explainer, small_clip, tmp_path / "out.mp4", 409, "overlay", 4, 5, False, steadiness=Steadiness(smooth=1.0)
    )
    with VideoReader(small_clip) as reader:
        frames = [frame for _, frame in zip(range(5), reader)]
    # the same batches as the render's: the numbers are equal, not just close
    expected = explainer.explain_batch(frames[:4], [409] * 4, evidence=True)
    expected += explainer.explain_batch(frames[4:], [409], evidence=True)
    assert result.table is not None
    for row, explanation in zip(table_rows(result.table), expected, strict=True):
        assert int(row["class_index"]) == 409 and explanation.probabilities is not None
        for name in ("frame", "preserved", "destroyed"):
            assert float(row[f"p_{name}"]) == pytest.approx(explanation.probabilities[name], rel=1e-5)
        assert float(row["mask_mean"]) == pytest.approx(float(explanation.mask.mean()), rel=1e-5)
        assert float(row["mask_share"]) == pytest.approx(float((explanation.mask >= 0.5).mean()), rel=1e-5)
        box = tuple(int(row[f"box_{edge}"]) for edge in ("x0", "y0", "x1", "y1")) if row["box_x0"] else None
        assert box == explanation.box


def test_interrupted_render_leaves_a_playable_file_and_its_rows(explainer, small_clip, tmp_path) -> None:
    def stop_after_five(written: int) -> None:
        if written == 5:
            raise KeyboardInterrupt

    output = tmp_path / "interrupted.mp4"
    with pytest.raises(KeyboardInterrupt):
        render(explainer, small_clip, output, view="preserved", batch=4, progress=False, on_frame=stop_after_five)
    codec, decoded = read_with_pyav(output)
    assert codec == "h264" and len(decoded) == 5 and decoded[0].shape == (240, 320, 3)
    frames = read_back(output)  # OpenCV too
    assert len(frames) == 5 and frames[0].shape == (240, 320, 3)
    assert [row["frame"] for row in table_rows(table_path(output))] == ["0", "1", "2", "3", "4"]


def test_box_on_request_and_caption_unless_declined(explainer) -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[60:180, 80:240] = (220, 60, 20)
    explanation = explainer.explain(frame, 409)
    assert explanation.box is not None
    plain = compose(explanation, "overlay", titles=False)
    boxed = render_frame(explanation, "overlay", box=True, caption=False)
    green = np.all(boxed == BOX_COLOUR, axis=2)
    assert green.any() and np.array_equal(boxed[~green], plain[~green])
    assert np.array_equal(render_frame(explanation, "overlay", caption=False), plain)  # no box unless asked
    captioned = render_frame(explanation, "overlay")  # the caption is on by default, along the bottom
    changed = np.flatnonzero(np.any(captioned != plain, axis=(1, 2)))
    assert changed.size and changed.min() > 240 // 2


def test_without_table_and_caption_no_evidence_is_computed(explainer, small_clip, tmp_path) -> None:
    result = render(
        explainer,
        small_clip,
        tmp_path / "bare.mp4",
        view="overlay",
        batch=4,
        max_frames=4,
        progress=False,
        table=False,
        caption=False,
    )
    assert result.table is None and not (tmp_path / "bare.csv").exists() and result.frames == 4


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


def test_the_command_line_renders_video_and_table_and_refuses_bad_options(small_clip, tmp_path, capsys) -> None:
    output = tmp_path / "cli.mp4"
    common = [str(small_clip), "-o", str(output), "--untrained", "--backend", "onnxruntime", "--max-frames", "3"]
    assert main(["render", *common, "--box", "--smooth", "0.5", "--batch", "2"]) == 0
    assert f"wrote 3 frames to {output} and their numbers to {tmp_path / 'cli.csv'}" in capsys.readouterr().out
    assert read_with_pyav(output)[0] == "h264" and len(table_rows(tmp_path / "cli.csv")) == 3
    for bad, message in (
        (["--box", "--view", "preserved"], "--box draws on the overlay"),
        (["--smooth", "0"], "alpha"),
        (["--hold", "0"], "hold"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["render", *common, *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
