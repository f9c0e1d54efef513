"""The command line: --help, bad arguments (one line, status 2, before the app starts), and real headless runs of
run_app.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import parse_args
from engine.contract import AUTO
from tests.model_cards import card_only_model

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = ("--source", "--model", "--backend", "--class", "--benchmark-frames", "webcam", "camera:0@1280x720:30")
    for option in options:
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
    startup = next(line for line in result.stdout.splitlines() if "first explained frame painted" in line)
    assert "launch to first picture" in startup and "on the offscreen platform" in startup
    assert not (tmp_path / "live-saliency").exists()  # a benchmark leaves the user's settings alone


def test_seek_benchmark_times_jumps_drags_and_settings_and_exits(video_file, untrained_model_file, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [sys.executable, str(ROOT / "run_app.py"), "--source", str(video_file)]
    command += ["--model", str(untrained_model_file), "--backend", "torch-cpu", "--benchmark-seeks", "12"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"benchmark: 12 actions on {video_file.name}, paused, one at a time" in result.stdout
    counts = {
        line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines() if "request to picture" in line
    }
    assert sum(counts.values()) == 12 and set(counts) <= {"seek", "drag", "setting"}, result.stdout
    assert not (tmp_path / "live-saliency").exists()


def test_benchmark_with_a_model_that_cannot_load_fails_with_the_reason(video_file, tmp_path):
    """A model file whose card is fine passes the argument checks; what fails while loading it is reported."""
    model = card_only_model(
        tmp_path / "elsewhere.safetensors", blackbox={"name": "resnet50", "weights_sha256": "1" * 64}
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [
        sys.executable,
        str(ROOT / "run_app.py"),
        "--source",
        str(video_file),
        "--model",
        str(model),
        "--benchmark-frames",
        "4",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert "benchmark failed" in result.stderr and "resnet50" in result.stderr


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert lines[0].startswith("saliency-app: error: ")
    return lines[0]


def test_bad_arguments_are_one_line_and_status_2(capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    generic = card_only_model(tmp_path / "generic.safetensors", classes={"count": 10, "list": "generic"})
    cases = [
        (["--source", str(tmp_path / "missing.mp4")], "argument --source:", "does not exist"),
        (["--source", str(text)], "argument --source:", "could not be opened as a video"),
        (["--source", str(tmp_path)], "argument --source:", "is a folder"),
        (["--source", "camera:0@1280"], "argument --source:", "write camera:INDEX[@WIDTHxHEIGHT[:FPS]]"),
        (["--source", "udp://192.168.1.20"], "argument --source:", "udp:// needs a port"),
        (["--source", "ftp://host/clip"], "argument --source:", "ftp:// is not a stream this app opens"),
        (["--model", str(tmp_path / "nope.safetensors")], "argument --model:", "does not exist"),
        (["--model", str(text)], "argument --model:", "not a readable safetensors model file"),
        (["--class", "no-such-class"], "argument --class:", "no class named 'no-such-class'"),
        (["--class", "1000"], "argument --class:", "outside 0..999"),
        (["--model", str(generic), "--class", "tabby"], "argument --class:", "no class named 'tabby'"),
        (["--benchmark-frames", "-1"], "argument --benchmark-frames:", "must be at least 0, not -1"),
        (["--benchmark-frames", "many"], "argument --benchmark-frames:", "'many' is not a whole number"),
        (["--backend", "warp-drive"], "argument --backend:", "invalid choice"),
        (["--record", str(tmp_path / "out.avi")], "argument --record:", "must end in .mp4"),
        (["--record", str(tmp_path)], "argument --record:", "must end in .mp4"),
        (["--frobnicate"], "unrecognized arguments", "--frobnicate"),
    ]
    for argv, where, message in cases:
        line = _usage_error(capsys, argv)
        assert where in line and message in line, line


def test_good_arguments_come_back_resolved(video_file, tmp_path):
    generic = card_only_model(tmp_path / "generic.safetensors", classes={"count": 10, "list": "generic"})
    args = parse_args(["--source", str(video_file), "--class", "tabby"])
    assert args.source == str(video_file) and args.target == 281 and args.model is None
    assert parse_args(["--class", "auto"]).target == AUTO
    assert parse_args([]).target is None  # no --class: the remembered choice stays
    assert parse_args(["--model", str(generic), "--class", "class 7"]).target == 7
    # cameras and streams are opened by the app (which falls back to the demo clip), not by the check
    assert parse_args(["--source", "7"]).source == "camera:7"  # (in the form Recent and the session keep)
    assert parse_args(["--source", "camera:1@1280x720:30"]).source == "camera:1@1280x720:30"
    assert parse_args(["--source", "rtsp://camera.invalid/stream"]).source == "rtsp://camera.invalid/stream"


def test_a_bad_argument_stops_the_app_before_it_starts(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    command = [sys.executable, str(ROOT / "run_app.py"), "--class", "no-such-class", "--benchmark-frames", "4"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "saliency-app: error: argument --class: no class named 'no-such-class'; try part of a name, e.g. 'tabby' or "
        "'espresso' (see saliency-app --help)"
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 / Wayland displays are a Linux matter")
def test_without_a_display_the_app_says_so_in_one_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_app.py")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "no display" in result.stderr


def test_looking_for_a_missing_webcam_prints_no_opencv_warnings(tmp_path) -> None:
    """The app says what it found in its own words; OpenCV's log lines would be the first thing a user reads."""
    probe = (
        "import app.playback.sources, cv2; cv2.VideoCapture(9).release(); "
        "cv2.VideoCapture('/nonexistent.mp4').release()"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPENCV_")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stderr and "can't open" not in done.stderr, done.stderr
