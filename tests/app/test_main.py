"""The command line: --help, bad options, and a real headless benchmark run of run_app.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--source", "--model", "--backend", "--class", "--benchmark-frames", "webcam"):
        assert option in text


def test_unknown_backend_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--backend", "warp-drive"])
    assert "invalid choice" in capsys.readouterr().err


def test_benchmark_run_prints_the_rate_and_exits(video_file, untrained_model_file, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [
        sys.executable,
        str(ROOT / "run_app.py"),
        "--source",
        str(video_file),
        "--model",
        str(untrained_model_file),
        "--backend",
        "torch-cpu",
        "--no-evidence",
        "--benchmark-frames",
        "4",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "benchmark: 4 explained frames shown in" in result.stdout
    assert "frames/s shown" in result.stdout and "backend torch-cpu" in result.stdout
    assert not (tmp_path / "live-saliency").exists()  # a benchmark leaves the user's settings alone


def test_benchmark_without_a_model_fails_with_the_reason(video_file, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [
        sys.executable,
        str(ROOT / "run_app.py"),
        "--source",
        str(video_file),
        "--model",
        str(tmp_path / "absent.safetensors"),
        "--benchmark-frames",
        "4",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert "benchmark failed" in result.stderr and "absent.safetensors" in result.stderr
