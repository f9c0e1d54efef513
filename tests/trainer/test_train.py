"""Real training runs on tiny data: 8 small photos, a small decoder, the real Lite0 black box and encoder."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from engine.modelfiles.modelfile import load_model, save_model
from tests.trainer.test_provenance import absolute_paths
from trainer.data.images import BatchAugmenter, load_training_set
from trainer.training.config import TrainConfig
from trainer.training.distributed import Distributed
from trainer.training.finalise import main as finalise
from trainer.training.step import MaskerStep, StepContext, batch_indices, step_terms
from trainer.training.train import build_masker, main, start_from

pytestmark = pytest.mark.usefixtures("one_thread")

PROJECT = Path(__file__).resolve().parents[2]
TINY_MODEL = ["--image-size", "64", "--upsampler-channels", "32", "16", "8", "--short-side", "64"]


def make_tiny_data(root: Path) -> tuple[Path, Path]:
    """(training folder with labels.csv, boxes folder with boxes.csv): crops of two photos, cat and espresso."""
    from skimage import data as samples

    train, val = root / "train", root / "val"
    train.mkdir(parents=True)
    val.mkdir(parents=True)
    photos = [(Image.fromarray(samples.chelsea()), 281), (Image.fromarray(samples.coffee()), 967)]
    rows = []
    for index in range(8):
        photo, label = photos[index % 2]
        shift = 12 * (index // 2)
        photo.crop((shift, shift, photo.width - shift, photo.height - shift)).resize((72, 64)).save(
            train / f"{index}.jpg"
        )
        rows.append(f"{index}.jpg,{label}")
    (train / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    boxes = []
    for index, (photo, label) in enumerate(photos * 2):
        photo.resize((64, 64)).save(val / f"v{index}.png")
        boxes.append(f"v{index}.png,{label},64,64,8,4,60,62")
    (val / "boxes.csv").write_text("file,label,orig_width,orig_height,x0,y0,x1,y1\n" + "\n".join(boxes) + "\n")
    return train, val


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_data(tmp_path_factory.mktemp("tiny"))


def options(train: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(train), "--out", str(out), "--no-progress", "--seed", "3", *TINY_MODEL, *extra]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_twenty_steps_lower_the_loss_and_write_a_model_that_loads(tiny_data, tmp_path, blackbox):
    train, val = tiny_data
    out = tmp_path / "run"
    code = main(
        options(
            train,
            out,
            "--val-data",
            str(val),
            "--steps",
            "20",
            "--batch",
            "4",
            "--lr",
            "1e-3",
            "--warmup-steps",
            "1",
            "--log-every",
            "1",
            "--val-every",
            "10",
            "--checkpoint-every",
            "10",
        )
    )
    assert code == 0
    assert len(read_csv(out / "train.csv")) == 20
    config = TrainConfig.load(out)
    trained, card = load_model(out / "model.safetensors", blackbox)
    torch.manual_seed(config.seed)
    untrained = build_masker(config, blackbox)  # the run's initial weights (same seed, same order of draws)
    assert _fixed_batches_loss(config, untrained, blackbox) > _fixed_batches_loss(config, trained, blackbox)
    assert [int(row["step"]) for row in read_csv(out / "val.csv")] == [10, 20]
    assert card["training"]["steps"] == 20 and card["training"]["images_seen"] == 80
    assert card["training"]["preset"] == "default" and card["training"]["best_step"] in (10, 20)
    assert {"loc_error_paper", "loc_error_mean", "saliency_metric", "mean_mask", "mask_fake", "held_out"} <= set(
        card["evaluation"]
    )
    assert card["evaluation"]["images"] == 4
    with torch.no_grad():
        mask = trained(torch.rand(1, 3, 64, 64), torch.tensor([281]))
    assert mask.shape == (1, 1, 64, 64)
    assert (out / "config.json").is_file() and (out / "grid.png").is_file()

    shipped = tmp_path / "shipped" / "tiny.safetensors"
    assert (
        finalise([str(out / "model.safetensors"), "--to", str(shipped), "--evaluate", str(val), "--device", "cpu"]) == 0
    )
    _, shipped_card = load_model(shipped, blackbox)
    assert shipped_card["training"] == card["training"] and shipped_card["weights_sha256"] == card["weights_sha256"]
    assert shipped_card["evaluation"]["during_training"]["images"] == 4
    assert (shipped.parent / "tiny.card.json").is_file()


@torch.no_grad()
def _fixed_batches_loss(config: TrainConfig, masker, blackbox) -> float:
    """The objective on the batches of steps 0..4 (the same crops, classes and alternatives for every masker)."""
    data = load_training_set(Path(config.data), blackbox, torch.device("cpu"), config.short_side, progress=False)
    augmenter = BatchAugmenter(data.images, torch.device("cpu"), config.image_size, (config.crop_scale_min, 1.0))
    masker.eval()  # batch-norm running statistics: what the model file holds
    context = StepContext(
        config, Distributed(), torch.device("cpu"), False, augmenter, data.labels, MaskerStep(masker), blackbox
    )
    losses = [step_terms(context, step).terms["loss"].item() for step in range(5)]
    return sum(losses) / len(losses)


def test_cards_of_a_fresh_run_hold_no_path_of_this_machine(tiny_data, tmp_path, blackbox):
    train, val = tiny_data
    parent = tmp_path / "parent" / "tiny-parent.safetensors"  # a model file of an older version: paths in its card
    tiny = TrainConfig(image_size=64, upsampler_channels=(32, 16, 8)).resolved()
    old_command = f"python -m trainer train --data {tmp_path}/old-data --out {tmp_path}/old-run"
    save_model(parent, build_masker(tiny, blackbox), blackbox, training={"command": old_command})
    out, shipped = tmp_path / "run", tmp_path / "shipped" / "tiny.safetensors"
    extra = ["--steps", "2", "--batch", "2", "--val-every", "1", "--init", str(parent)]
    assert main(options(train, out, f"--val-data={val}", *extra)) == 0  # also the --option=PATH form
    assert (
        finalise([str(out / "model.safetensors"), "--to", str(shipped), "--evaluate", str(val), "--device", "cpu"]) == 0
    )

    for path in [out / "best.safetensors", out / "last.safetensors", out / "model.safetensors", shipped]:
        for card in (embedded_card(path), json.loads(path.with_suffix(".card.json").read_text())):
            assert absolute_paths(card) == [], path.name
            assert str(tmp_path) not in json.dumps(card)
    card = embedded_card(shipped)
    data = card["training"]["data"]
    assert data["name"] == "train" and data["images"] == 8 and re.fullmatch("[0-9a-f]{64}", data["sha256"])
    assert card["evaluation"]["data"]["name"] == "val" and card["evaluation"]["data"]["images"] == 4
    assert card["training"]["started_from"]["model"] == ".../tiny-parent.safetensors"
    assert "--data .../train" in card["training"]["command"]


def embedded_card(path: Path) -> dict:
    """The card in a model file's metadata, read directly (what is checked here is its content, not the loader)."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["card"])


def test_resume_continues_exactly_where_the_run_stopped(tiny_data, tmp_path):
    train, _ = tiny_data
    common = ["--val-data", "none", "--batch", "2", "--lr-schedule", "constant", "--checkpoint-every", "3"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(options(train, straight, *common, "--steps", "6")) == 0
    assert main(options(train, split, *common, "--steps", "3")) == 0
    assert main(["--out", str(split), "--resume", "--steps", "6", "--no-progress"]) == 0
    expected, resumed = load_file(straight / "last.safetensors"), load_file(split / "last.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[key], resumed[key]) for key in expected)


def test_init_fine_tunes_from_a_model_file_of_the_same_architecture(tiny_data, tmp_path, blackbox, capsys):
    train, _ = tiny_data
    first = tmp_path / "first"
    assert main(options(train, first, "--val-data", "none", "--batch", "2", "--steps", "2", "--lr", "1e-2")) == 0
    source = first / "model.safetensors"
    config = TrainConfig.load(first)
    fresh = build_masker(config, blackbox)
    start_from(fresh, source, blackbox)
    expected = load_model(source, blackbox)[0].trainable_state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in fresh.trainable_state_dict().items())

    second = tmp_path / "second"
    assert (
        main(options(train, second, "--val-data", "none", "--batch", "2", "--steps", "1", "--init", str(source))) == 0
    )
    assert TrainConfig.load(second).init == str(source)
    history = load_model(second / "model.safetensors", blackbox)[1]["training"]["started_from"]
    assert history["weights_sha256"] == load_model(source, blackbox)[1]["weights_sha256"]
    assert history["training"]["steps"] == 2
    assert "starting from the weights of" in capsys.readouterr().out

    other = options(train, tmp_path / "third", "--val-data", "none", "--steps", "1", "--init", str(source))
    other[other.index("--upsampler-channels") + 1] = "24"
    assert main(other) == 2  # a bad argument, found before the data are loaded
    assert "upsampler_channels: (32, 16, 8) in the file, (24, 16, 8) here" in capsys.readouterr().err


def test_resume_refuses_changed_options_and_new_runs_refuse_an_old_folder(tiny_data, tmp_path, capsys):
    train, _ = tiny_data
    out = tmp_path / "run"
    assert main(options(train, out, "--val-data", "none", "--batch", "2", "--steps", "1")) == 0
    assert main(["--out", str(out), "--resume", "--lr", "0.1"]) == 2
    assert "cannot change: lr" in capsys.readouterr().err
    assert main(options(train, out, "--val-data", "none", "--steps", "1")) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_after_a_kill(tiny_data, tmp_path):
    train, _ = tiny_data
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "trainer",
        "train",
        *options(
            train,
            out,
            "--val-data",
            "none",
            "--batch",
            "2",
            "--steps",
            "1000",
            "--checkpoint-every",
            "2",
            "--log-every",
            "1",
            "--threads",
            "1",
        ),
    ]
    process = subprocess.Popen(command, cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _checkpoint_step_at_least(out, 4):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    saved_step = torch.load(out / "checkpoint.pt", weights_only=True)["run"]["step"]
    assert saved_step >= 4
    assert main(["--out", str(out), "--resume", "--steps", str(saved_step + 2), "--no-progress"]) == 0
    steps = [int(row["step"]) for row in read_csv(out / "train.csv")]
    assert steps == list(range(1, saved_step + 3))  # rows after the checkpoint were dropped, then continued
    card = load_model(out / "model.safetensors")[1]
    assert card["training"]["steps"] == saved_step + 2


def _checkpoint_step_at_least(out: Path, step: int) -> bool:
    try:
        return torch.load(out / "checkpoint.pt", weights_only=True)["run"]["step"] >= step
    except (FileNotFoundError, RuntimeError, EOFError):
        return False


def test_time_budget_stops_cleanly(tiny_data, tmp_path):
    train, _ = tiny_data
    out = tmp_path / "budget"
    assert (
        main(options(train, out, "--val-data", "none", "--batch", "2", "--steps", "100000", "--time-budget", "0.25"))
        == 0
    )
    card = load_model(out / "model.safetensors")[1]
    assert card["training"]["stopped_by"] == "time budget" and 0 < card["training"]["steps"] < 100000


def test_bad_data_is_a_clear_error(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_data_order_splits_each_global_batch_between_processes():
    first = batch_indices(0, 5, count=40, batch=4, ranks=Distributed(0, 2))
    second = batch_indices(0, 5, count=40, batch=4, ranks=Distributed(1, 2))
    assert set(first.tolist()).isdisjoint(second.tolist())
    epoch = torch.cat([batch_indices(0, step, count=40, batch=4, ranks=Distributed()) for step in range(10)])
    assert sorted(epoch.tolist()) == list(range(40))  # every image once per epoch


def test_init_from_a_model_of_another_black_box_with_the_same_encoder(tiny_data, tmp_path, capsys):
    """A masker moves to another black box by fine-tuning (the paper's encoder need not be the black box): its
    decoder reads the encoder's features, which stay the same. The card names the new black box and the old one."""
    photos = tmp_path / "photos"  # unlabelled: each black box labels them with its own top-1
    photos.mkdir()
    for image in sorted(tiny_data[0].glob("*.jpg"))[:4]:
        (photos / image.name).write_bytes(image.read_bytes())
    user = ["--encoder", "efficientnet_lite0", "--embedding-init", "random", "--val-data", "none", "--batch", "2"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(options(photos, first, "--blackbox", "tests.engine.user_blackbox:tiny", *user, "--steps", "2")) == 0
    source = first / "model.safetensors"
    init = ["--init", str(source), "--steps", "1"]
    assert main(options(photos, second, "--blackbox", "tests.engine.user_blackbox:tiny_retrained", *user, *init)) == 0
    assert "starting from the weights of" in capsys.readouterr().out

    masker, card = load_model(second / "model.safetensors")  # against its own black box, the retrained one
    assert card["blackbox"]["name"] == "tests.engine.user_blackbox:tiny_retrained"
    assert card["masker"]["encoder"] == "efficientnet_lite0"
    history = card["training"]["started_from"]
    assert history["blackbox"]["name"] == "tests.engine.user_blackbox:tiny"
    assert history["weights_sha256"] == load_model(source)[1]["weights_sha256"]

    other_encoder = options(photos, tmp_path / "third", "--blackbox", "efficientnet_lite0", *user, *init)
    other_encoder[other_encoder.index("efficientnet_lite0", other_encoder.index("--encoder"))] = "resnet18"
    assert main(other_encoder) == 2  # the decoder of a Lite0 encoder cannot read ResNet features
    assert "encoder: efficientnet_lite0 in the file, resnet18 here" in capsys.readouterr().err
