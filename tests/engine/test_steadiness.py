"""`python -m engine steadiness`: its figures on hand-made sequences, and one short real run."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import main
from engine.video.steadiness import class_lags, parse_numbers, replay, switches_per_100


def test_switches_are_counted_per_100_frame_changes() -> None:
    assert switches_per_100([1, 1, 2, 2, 1]) == 50.0  # 2 changes over 4 frame-to-frame steps
    assert switches_per_100([3] * 10) == 0.0 and switches_per_100([3]) == 0.0


def test_the_lag_counts_the_frames_the_old_class_was_already_not_the_top_class() -> None:
    top1 = [1, 1, 2, 2, 2, 2, 1, 3, 3]
    shown = [1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert class_lags(shown, top1) == [2, 2]  # 1 left the top at frame 2, shown until 3; 2 left it at 6, shown until 7
    assert class_lags(top1, top1) == [0, 0, 0]  # plain auto follows the top class at once


def test_replay_is_the_hysteresis_on_recorded_rankings() -> None:
    rankings = [[(1, "a", 0.6), (2, "b", 0.3)]] * 2 + [[(2, "b", 0.6), (1, "a", 0.3)]] * 3
    assert replay(rankings, 0.1, 2) == [1, 1, 1, 2, 2]
    assert replay(rankings, 0.0, 1) == [1, 1, 2, 2, 2]


def test_number_lists_are_parsed_or_refused() -> None:
    assert parse_numbers("1, 0.5,", float) == [1.0, 0.5] and parse_numbers("3,5", int) == [3, 5]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_numbers("1,x", float)


def test_a_short_real_run_prints_the_tables_and_writes_json(data_root, tmp_path, capsys) -> None:
    clip = data_root / "videos" / "realshort.mp4"
    out = tmp_path / "steadiness.json"
    common = [str(clip), "--untrained", "--frames", "8", "--batch", "4"]
    assert (
        main(["steadiness", *common, "--alphas", "1,0.5", "--margins", "0,0.1", "--holds", "1,3", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "realshort.mp4: 320x240" in printed and "by margin x hold" in printed
    (report,) = json.loads(out.read_text())
    assert report["frames"] == 8 and len(report["runs"]) == 4 and len(report["grid"]) == 4
    plain = next(run for run in report["runs"] if not run["steady"] and run["alpha"] == 1.0)
    grid_plain = next(point for point in report["grid"] if point["margin"] == 0 and point["hold"] == 1)
    assert grid_plain["switches_per_100"] == plain["switches_per_100"]  # margin 0, hold 1 is plain auto
    smoothed = next(run for run in report["runs"] if not run["steady"] and run["alpha"] == 0.5)
    assert smoothed["mask_delay_frames"] == 1.0 and plain["mask_delay_frames"] == 0.0
    with pytest.raises(SystemExit) as exit_info:
        main(["steadiness", *common, "--alphas", "1,2"])
    assert exit_info.value.code == 2 and "alpha" in capsys.readouterr().err
