"""`python -m engine`: every bad argument is one line on stderr and exit status 2, before a model loads, and leaves
no output file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.__main__ import main, parse_args
from engine.contract import AUTO
from engine.paths import DEFAULT_MODEL, DEMO_CLIP
from tests.model_cards import card_only_model

ROOT = Path(__file__).resolve().parents[2]


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Runs the CLI on argv, checks the exit status and the one line, and returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m engine") and ": error: " in lines[0]
    return lines[0]


@pytest.fixture
def generic_model(tmp_path: Path) -> Path:
    """A model whose black box has ten unnamed classes ('class 0' ... 'class 9')."""
    return card_only_model(tmp_path / "generic.safetensors", classes={"count": 10, "list": "generic"})


RENDER_CASES = {
    "opacity above 1": (["--opacity", "5"], "argument --opacity: must be between 0 and 1"),
    "opacity below 0": (["--opacity", "-0.5"], "argument --opacity: must be between 0 and 1"),
    "opacity not finite": (["--opacity", "nan"], "argument --opacity: 'nan' is not a finite number"),
    "opacity not a number": (["--opacity", "half"], "argument --opacity: 'half' is not a number"),
    "batch 0": (["--batch", "0"], "argument --batch: must be at least 1, not 0"),
    "batch not whole": (["--batch", "2.5"], "argument --batch: '2.5' is not a whole number"),
    "max frames 0": (["--max-frames", "0"], "argument --max-frames: must be at least 1"),
    "unknown class": (["--class", "no-such-thing"], "argument --class: no class named 'no-such-thing'"),
    "class index outside": (["--class", "1000"], "class index 1000 is outside 0..999"),
    "ambiguous class": (["--class", "dog"], "be more specific"),
    "unknown view": (["--view", "sideways"], "argument --view: invalid choice"),
    "unknown fill": (["--fill", "pink"], "argument --fill: invalid choice"),
    "unknown backend": (["--backend", "warp-drive"], "argument --backend: invalid choice"),
    "class of the untrained masker's black box": (["--untrained", "--class", "zzz"], "no class named 'zzz'"),
    "model and untrained": (["--untrained", "--model", str(DEFAULT_MODEL)], "not allowed with argument"),
}


@pytest.mark.parametrize(("extra", "message"), RENDER_CASES.values(), ids=RENDER_CASES.keys())
def test_render_refuses_a_bad_option(capsys, tmp_path, extra, message) -> None:
    output = tmp_path / "out.mp4"
    line = _usage_error(capsys, ["render", str(DEMO_CLIP), "-o", str(output), *extra])
    assert line.startswith("python -m engine render: error: ")
    assert message in line
    assert not output.exists()


def test_render_refuses_bad_files(capsys, tmp_path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    output = tmp_path / "out.mp4"
    cases = [
        ([str(tmp_path / "missing.mp4"), "-o", str(output)], "argument input:", "missing.mp4 does not exist"),
        ([str(text), "-o", str(output)], "argument input:", "not a video"),
        ([str(DEMO_CLIP), "-o", str(tmp_path / "out")], "argument -o/--output:", "must end in one of .mp4"),
        ([str(DEMO_CLIP), "-o", str(folder)], "argument -o/--output:", "is a folder"),
        ([str(DEMO_CLIP), "-o", str(text / "out.mp4")], "argument -o/--output:", "is a file, so no folder"),
        ([str(DEMO_CLIP), "-o", str(DEMO_CLIP)], "the output", "is the input file"),
        ([str(DEMO_CLIP), "-o", str(output), "--model", str(tmp_path / "nope.safetensors")], "--model", "not exist"),
        ([str(DEMO_CLIP), "-o", str(output), "--model", str(text)], "argument --model:", "not a readable"),
    ]
    for argv, where, message in cases:
        line = _usage_error(capsys, ["render", *argv])
        assert where in line and message in line, line
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04junk")
    assert "looks like a pickle" in _usage_error(
        capsys, ["render", str(DEMO_CLIP), "-o", str(output), "--model", str(pickle)]
    )
    assert not output.exists()


def test_the_class_resolves_against_the_models_own_class_list(capsys, tmp_path, generic_model) -> None:
    output = tmp_path / "out.mp4"
    base = ["render", str(DEMO_CLIP), "-o", str(output), "--model", str(generic_model)]
    assert "no class named 'tabby'" in _usage_error(capsys, [*base, "--class", "tabby"])
    assert "class index 10 is outside 0..9" in _usage_error(capsys, [*base, "--class", "10"])
    assert parse_args([*base, "--class", "class 7"]).target == 7
    assert parse_args([*base, "--class", "3"]).target == 3
    assert not output.exists()


def test_good_render_arguments_come_back_checked(tmp_path) -> None:
    args = parse_args(["render", str(DEMO_CLIP), "-o", str(tmp_path / "sub" / "out.mp4"), "--class", "tabby"])
    assert args.target == 281  # 'tabby, tabby cat' in the bundled model's ImageNet-1k list
    assert args.model == DEFAULT_MODEL and args.opacity == 0.5 and args.batch == 8
    assert parse_args(["render", str(DEMO_CLIP), "-o", str(tmp_path / "o.mp4"), "--opacity", "1"]).target == AUTO
    assert not (tmp_path / "sub").exists()  # checking makes no folder


def test_a_missing_default_model_is_a_usage_error(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SALIENCY_MODEL", str(tmp_path / "gone.safetensors"))
    line = _usage_error(capsys, ["render", str(DEMO_CLIP), "-o", str(tmp_path / "out.mp4")])
    assert "$SALIENCY_MODEL: model file" in line and "gone.safetensors does not exist" in line
    assert parse_args(["bench", "--untrained"]).model is None  # --untrained needs no model file


BENCH_CASES = {
    "frames 0": (["--frames", "0"], "argument --frames: must be at least 1, not 0"),
    "repeats 0": (["--repeats", "0"], "argument --repeats: must be at least 1, not 0"),
    "threads -1": (["--threads", "-1"], "argument --threads: must be at least 0, not -1"),
    "prefetch -2": (["--prefetch", "-2"], "argument --prefetch: must be at least 0"),
    "seconds 0": (["--seconds", "0"], "argument --seconds: must be more than 0"),
    "unknown rows": (["--backends", "torch-cpu,warp-drive"], "argument --backends: unknown rows ['warp-drive']"),
    "no rows": (["--backends", ","], "argument --backends: unknown rows"),
    "missing video": (["--video", "/no/such/clip.mp4"], "argument --video: /no/such/clip.mp4 does not exist"),
    "json over the video": (["--out", str(DEMO_CLIP)], "is the input file"),
}


@pytest.mark.parametrize(("extra", "message"), BENCH_CASES.values(), ids=BENCH_CASES.keys())
def test_bench_refuses_a_bad_option(capsys, extra, message) -> None:
    line = _usage_error(capsys, ["bench", "--untrained", *extra])
    assert line.startswith("python -m engine bench: error: ") and message in line


def test_bench_and_build_refuse_bad_outputs_and_models(capsys, tmp_path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    assert "is a folder; name a file" in _usage_error(capsys, ["bench", "--untrained", "--out", str(tmp_path)])
    line = _usage_error(capsys, ["build", str(tmp_path / "nope.safetensors")])
    assert "argument model: model file" in line and "does not exist" in line
    assert "is a file, not a folder" in _usage_error(capsys, ["build", str(DEFAULT_MODEL), "--out", str(a_file)])
    assert "invalid choice: 'warp'" in _usage_error(capsys, ["build", str(DEFAULT_MODEL), "--backend", "warp"])
    assert "invalid choice: 'frobnicate'" in _usage_error(capsys, ["frobnicate"])
    args = parse_args(["bench", "--untrained", "--backends", "torch-cpu, onnxruntime"])
    assert args.backends == ("torch-cpu", "onnxruntime") and args.video == DEMO_CLIP


def test_a_bad_render_option_as_a_user_meets_it(tmp_path) -> None:
    """The issue's example, as a real process: one line, status 2, no traceback, no output file, no torch."""
    output = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "engine", "render", str(DEMO_CLIP), "-o", str(output), "--opacity", "5"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "python -m engine render: error: argument --opacity: must be between 0 and 1, not 5 "
        "(see python -m engine render --help)"
    ]
    assert result.stdout == "" and not output.exists()

    # the class check reads the model's card, not the model: torch is never imported
    code = (
        "import sys\nfrom engine.__main__ import main\n"
        f"try:\n    main(['render', {str(DEMO_CLIP)!r}, '-o', {str(output)!r}, '--class', 'no-such-class'])\n"
        "except SystemExit as stop:\n    print(stop.code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    assert "no class named 'no-such-class'" in result.stderr and not output.exists()
