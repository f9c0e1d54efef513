"""DDP through torchrun: 2 CPU processes with the gloo backend train one tiny model together."""

import os
import subprocess
import sys

from engine.modelfiles.modelfile import load_model
from tests.trainer.test_train import PROJECT, TINY_MODEL, make_tiny_data, read_csv


def test_two_processes_train_one_model(tmp_path):
    train, _ = make_tiny_data(tmp_path / "data")
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "trainer",
        "train",
        "--data",
        str(train),
        "--val-data",
        "none",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--steps",
        "3",
        "--batch",
        "2",
        "--log-every",
        "1",
        "--no-progress",
        "--time-budget",
        "5",
        *TINY_MODEL,
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    card = load_model(out / "model.safetensors")[1]
    assert card["training"]["processes"] == 2
    assert card["training"]["images_seen"] == 3 * 2 * 2  # steps x batch per process x processes
    assert [int(row["step"]) for row in read_csv(out / "train.csv")] == [1, 2, 3]  # one log, from rank 0
