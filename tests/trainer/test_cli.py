"""Bad arguments to `python -m trainer train|evaluate|grid|finalise`: one line on stderr, exit status 2, found before
a model or data are loaded, and nothing written. Run in-process through each command's main(argv); the dispatcher
and one command also as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.trainer.test_train import PROJECT, TINY_MODEL, make_tiny_data
from trainer.__main__ import main as trainer_main
from trainer.evaluation.evaluate import main as evaluate
from trainer.evaluation.grid import main as grid
from trainer.training.finalise import main as finalise
from trainer.training.train import main as train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_data(tmp_path_factory.mktemp("cli-data"))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working folder: default outputs (runs/...) would land here, where the tests look for strays."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def refused(command: Callable[[list[str]], int], argv: list[str], root: Path, capsys) -> str:
    """Run a command that must refuse its arguments: exit status 2, one line on stderr, no file or folder made."""
    before = sorted(root.rglob("*"))
    status = command(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured.err
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert sorted(root.rglob("*")) == before
    return lines[0]


TRAIN_REFUSALS = [
    (["--batch", "0"], "argument --batch: must be a whole number >= 1, not 0"),
    (["--batch", "two"], "argument --batch: must be a whole number >= 1, not 'two'"),
    (["--steps", "0"], "argument --steps: must be a whole number >= 1"),
    (["--lr", "0"], "argument --lr: must be a number > 0, not 0"),
    (["--lr", "nan"], "argument --lr: must be a number > 0"),
    (["--val-limit", "-1"], "argument --val-limit: must be a whole number >= 0"),
    (["--checkpoint-every", "0"], "argument --checkpoint-every"),
    (["--image-size", "100"], "argument --image-size: must be a whole number >= 32, a multiple of 32, not 100"),
    (["--fake-probability", "1"], "argument --fake-probability: must be a number >= 0 and < 1, not 1"),
    (["--area-target", "1.5"], "argument --area-target: must be a number > 0 and < 1"),
    (["--destroy-weight", "-1"], "argument --destroy-weight: must be a number >= 0"),
    (["--crop-scale-min", "0"], "argument --crop-scale-min: must be a number > 0 and <= 1"),
    (["--blur-probability", "2"], "argument --blur-probability: must be a number >= 0 and <= 1"),
    (["--time-budget", "-5"], "argument --time-budget: must be a number >= 0"),
    (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
    (["--area-form", "square"], "argument --area-form: invalid choice"),
    (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, not 'tpu'"),
    (["--blackbox", "nonesuch"], "--blackbox nonesuch: unknown; known: alexnet, efficientnet_lite0"),
    (["--encoder", "nonesuch"], "--encoder nonesuch: unknown"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("extra", "message"), TRAIN_REFUSALS, ids=[" ".join(e) for e, _ in TRAIN_REFUSALS])
def test_train_refuses_bad_numbers_and_names(tiny, tmp_path, workdir, capsys, extra, message):
    train_dir, val_dir = tiny
    argv = ["--data", str(train_dir), "--val-data", str(val_dir), "--out", str(tmp_path / "run"), *TINY_MODEL, *extra]
    line = refused(train, argv, tmp_path, capsys)
    assert line.startswith("python -m trainer train: error: ") and message in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there: --device cuda is a good argument")
def test_train_refuses_cuda_without_a_gpu(tiny, tmp_path, workdir, capsys):
    argv = ["--data", str(tiny[0]), "--out", str(tmp_path / "run"), "--device", "cuda"]
    assert "torch sees no CUDA GPU here; use --device cpu" in refused(train, argv, tmp_path, capsys)


def test_train_refuses_files_that_are_not_there_or_do_not_fit(tiny, tmp_path, workdir, capsys):
    train_dir, val_dir = tiny
    run = str(tmp_path / "run")
    base = ["--data", str(train_dir), "--val-data", str(val_dir), "--out", run, *TINY_MODEL]
    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_text("not a model")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (["--data", str(tmp_path / "nowhere")], "--data", "does not exist"),
        (["--val-data", str(tmp_path / "nowhere")], "--val-data", "no such folder"),
        (["--val-data", str(train_dir)], "--val-data", "has no boxes.csv"),
        (["--init", str(tmp_path / "missing.safetensors")], "--init", "does not exist"),
        (["--init", str(not_a_model)], "--init", "not a readable safetensors model file"),
        (["--out", str(a_file)], "--out", "is a file, not a folder"),
        (["--resume"], "nothing to resume", "no config.json"),
    ]
    for extra, first, then in cases:
        line = refused(train, base + extra, tmp_path, capsys)
        assert first in line and then in line, line


def test_train_refuses_labels_the_black_box_does_not_have(tmp_path, workdir, capsys):
    """Classes resolve against the black box before any image is decoded."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jpg").write_bytes(b"never decoded")
    (data / "labels.csv").write_text("file,label\na.jpg,1000\n")
    argv = ["--data", str(data), "--val-data", "none", "--out", str(tmp_path / "run"), *TINY_MODEL]
    line = refused(train, argv, tmp_path, capsys)
    assert "--data: " in line and "labels.csv:2" in line and "outside 0..999" in line


def test_evaluate_refuses_bad_arguments(tiny, tmp_path, workdir, capsys, untrained_model_file):
    train_dir, val_dir = tiny
    base = ["--data", str(val_dir), "--methods", "center", "--device", "cpu", "--out", str(tmp_path / "eval")]
    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_text("not a model")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (["--limit", "0"], "argument --limit: must be a whole number >= 1, not 0"),
        (["--batch-size", "0"], "argument --batch-size"),
        (["--iterations", "-3"], "argument --iterations"),
        (["--sheet", "-1"], "argument --sheet: must be a whole number >= 0"),
        (["--methods", "center,bogus"], "--methods: unknown method(s) ['bogus']"),
        (["--data", str(tmp_path / "nowhere")], "--data"),
        (["--data", str(train_dir)], "has no boxes.csv"),
        (["--annotations", str(tmp_path / "nowhere")], "--annotations"),
        (["--methods", "model", "--model", str(tmp_path / "missing.safetensors")], "does not exist"),
        (["--methods", "model", "--model", str(not_a_model)], "--model: "),
        (["--methods", "model", "--untrained", "--model", str(untrained_model_file)], "--untrained"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
        (["--out", str(a_file)], "--out"),
    ]
    for extra, message in cases:
        line = refused(evaluate, base + extra, tmp_path, capsys)
        assert line.startswith("python -m trainer evaluate: error: ") and message in line, line


def test_grid_refuses_bad_arguments(tiny, tmp_path, workdir, capsys, untrained_model_file):
    base = ["--model", str(untrained_model_file), "--data", str(tiny[1]), "--device", "cpu"]
    base += ["--out", str(tmp_path / "pictures" / "grid.png")]
    cases = [
        (["--count", "0"], "argument --count: must be a whole number >= 1"),
        (["--model", str(tmp_path / "missing.safetensors")], "--model: model file"),
        (["--data", str(tmp_path / "nowhere")], "--data"),
        (["--out", str(tmp_path / "grid.xyz")], "--out"),
        (["--device", "tpu"], "--device"),
    ]
    for extra, message in cases:
        line = refused(grid, base + extra, tmp_path, capsys)
        assert line.startswith("python -m trainer grid: error: ") and message in line, line


def test_finalise_refuses_bad_arguments(tiny, tmp_path, workdir, capsys, untrained_model_file):
    to = ["--to", str(tmp_path / "shipped" / "tiny.safetensors")]
    base = [str(untrained_model_file), *to, "--evaluate", str(tiny[1]), "--device", "cpu"]
    cases = [
        ([str(tmp_path / "missing.safetensors"), *to], "does not exist"),
        ([*base, "--to", str(tmp_path / "tiny.txt")], "--to"),
        ([*base, "--evaluate", str(tmp_path / "nowhere")], "--evaluate"),
        ([*base, "--grid", str(tmp_path / "grid.xyz")], "--grid"),
        ([str(untrained_model_file)], "the following arguments are required: --to"),
    ]
    for argv, message in cases:
        line = refused(finalise, argv, tmp_path, capsys)
        assert line.startswith("python -m trainer finalise: error: ") and message in line, line


def test_an_unknown_command_is_named_and_the_commands_listed(capsys):
    assert trainer_main(["foo"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "'foo' is not a command" in captured.err and "train, evaluate, grid, finalise" in captured.err
    assert trainer_main([]) == 0 and "commands:" in capsys.readouterr().out


@pytest.mark.parametrize("command", [train, evaluate, grid, finalise])
def test_help_explains_and_exits_cleanly(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command(["--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 10


def test_as_real_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}

    def trainer(*argv: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "trainer", *argv]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    unknown = trainer("foo")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "'foo' is not a command" in unknown.stderr and "train, evaluate, grid, finalise" in unknown.stderr
    bad = trainer("train", "--batch", "0", "--out", str(tmp_path / "run"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "--batch" in bad.stderr and sorted(tmp_path.iterdir()) == []
