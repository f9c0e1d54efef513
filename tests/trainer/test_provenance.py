"""Model cards name their data by name, content hash and count, and hold no path of the machine that made them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from engine.classes import imagenet_classes
from engine.modelfiles.modelfile import read_card
from engine.paths import DEFAULT_MODEL, PROJECT_ROOT
from trainer.data.images import SOURCE_FILES, find_source, source_files
from trainer.data.provenance import data_identity, portable_command, portable_path, portable_text

_WINDOWS = re.compile(r"^[A-Za-z]:[\\/]")


def absolute_paths(card: Any) -> list[str]:
    """Every string (key or value) of a card that holds an absolute path: POSIX, home (~/) or Windows."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, value in item.items():
                walk(key)
                walk(value)
        elif isinstance(item, list | tuple):
            for value in item:
                walk(value)
        elif isinstance(item, str):
            tokens = [t for t in re.split(r"[\s=,;()\[\]{}'\"]+", item) if len(t) > 1]  # "a / b" is no path
            if any(t.startswith(("/", "~/")) or ":/" in t or _WINDOWS.match(t) for t in tokens):
                found.append(item)

    walk(card)
    return found


def test_the_bundled_card_names_its_data_without_paths(data_root):
    card = read_card(DEFAULT_MODEL)
    assert absolute_paths(card) == []
    copy = json.loads(DEFAULT_MODEL.with_suffix(".card.json").read_text())
    assert absolute_paths(copy) == []
    graphs = copy.pop(
        "graphs"
    )  # the exported graphs' section (engine/modelfiles/exported.py): the embedded card has none
    assert copy == card and graphs["built_from"]["file"] == DEFAULT_MODEL.name
    data = card["training"]["data"]
    assert data["name"] == "imagenet-train" and data["images"] == 1750 and "path" not in data
    assert card["evaluation"]["data"]["name"] == "imagenet-val-dev" and card["evaluation"]["data"]["images"] == 630
    parent = card["training"]["started_from"]["training"]["data"]
    assert parent["sha256"] is None and "slimmed copy" in parent["note"]  # what is known, and that the hash is not

    # the recorded hash is the recipe's answer for the shared training folder (what the fine-tune read)
    folder = data_root / "imagenet-train"
    kind, records = find_source(folder, imagenet_classes())
    assert data_identity(folder, source_files(folder, kind, records), SOURCE_FILES[kind])["sha256"] == data["sha256"]


def _labelled_folder(root: Path, labels: list[int]) -> Path:
    root.mkdir(parents=True)
    for index in range(len(labels)):
        Image.new("RGB", (8, 8), (40 * index, 10, 10)).save(root / f"{index}.png")
    rows = [f"{index}.png,{label}" for index, label in enumerate(labels)]
    (root / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return root


def _identity(folder: Path) -> dict:
    kind, records = find_source(folder, imagenet_classes())
    return data_identity(folder, source_files(folder, kind, records), SOURCE_FILES[kind])


def test_the_content_hash_follows_the_content_not_the_place(tmp_path):
    original = _identity(_labelled_folder(tmp_path / "a" / "train", [1, 2, 3]))
    moved = tmp_path / "elsewhere" / "train"
    shutil.copytree(tmp_path / "a" / "train", moved)
    assert _identity(moved) == original  # same name, hash and count wherever the folder lives
    assert original["files"] == 4 and original["name"] == "train"

    relabelled = _labelled_folder(tmp_path / "b" / "train", [1, 2, 4])
    assert _identity(relabelled)["sha256"] != original["sha256"]
    Image.new("RGB", (8, 8), (1, 2, 3)).save(moved / "0.png")  # one photo changed, same size on disk or not
    assert _identity(moved)["sha256"] != original["sha256"]


def test_portable_paths(tmp_path, data_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable_path(data_root / "imagenet-train") == "$SALIENCY_DATA/imagenet-train"
    assert portable_path(PROJECT_ROOT / "runs" / "x") == "runs/x"  # inside the project
    assert portable_path(tmp_path / "runs" / "x") == ".../x"  # not relative to the working folder
    assert portable_path("runs/x") == "runs/x"  # as given
    assert portable_path("/somewhere/else/model.safetensors") == ".../model.safetensors"
    text = f"not the first 200 of {data_root}/imagenet-val-dev. Images in /mnt/photos/a.jpg (missing)"
    assert portable_text(text) == (
        "not the first 200 of $SALIENCY_DATA/imagenet-val-dev. Images in .../a.jpg (missing)"
    )
    assert portable_text("mean mask 0.3, 12 images/s, RGB in [0, 1]") == "mean mask 0.3, 12 images/s, RGB in [0, 1]"
    command = portable_command("python -m trainer train", ["--data", "/mnt/my data/train", f"--out={tmp_path}/run"])
    assert command == "python -m trainer train --data .../train --out=.../run"
    assert absolute_paths({"command": command}) == []
