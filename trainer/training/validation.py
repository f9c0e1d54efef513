"""Validation during training, with the evaluation's own code (trainer.evaluation.evaluate.evaluate_masker).

So the numbers in val.csv and in a model card are exactly what `python -m trainer evaluate` reports: localisation
error in % (paper protocol: threshold 0.5, tightest box, an empty mask is a miss; mean protocol: threshold at the
mean, largest component), the saliency metric on the paper box, the mean mask for the true class. Added here: the
mean mask for a wrong class (the model must answer "nothing" for a class that is not in the image).
"""

from __future__ import annotations

import hashlib
import time

import torch
from torch import nn

from engine.models.blackbox import BlackBox
from trainer.data.boxes import EvalDataset, open_dataset
from trainer.data.provenance import portable_path


def open_validation(folder: str) -> EvalDataset:
    return open_dataset(folder)


def selection_fingerprint(dataset: EvalDataset, limit: int | None) -> dict:
    """Which images validations chose the best weights on: the first `limit` files, by count and name hash."""
    files = [record.file for record in list(dataset)[: limit or len(dataset)]]
    return {"images": len(files), "files_sha256": hashlib.sha256("\n".join(files).encode()).hexdigest()}


def fake_classes(labels: list[int], num_classes: int, offset: int = 0) -> list[int]:
    """A fixed wrong class per image (deterministic, so that validations are comparable)."""
    return [(label + 1 + ((offset + i) * 7919) % (num_classes - 1)) % num_classes for i, label in enumerate(labels)]


@torch.no_grad()
def fake_class_mask_mean(
    masker: nn.Module, blackbox: BlackBox, dataset: EvalDataset, limit: int | None, device: torch.device
) -> float:
    """The mean mask when the selected class is a wrong one, over the first `limit` images."""
    from trainer.evaluation.scoring import image_batch, iter_batches

    indices = list(range(len(dataset) if limit is None else min(limit, len(dataset))))
    was_training = masker.training
    masker.eval()
    total, count = 0.0, 0
    for samples in iter_batches(dataset, indices, 32, []):
        images = image_batch(samples, blackbox.input_size, device)
        wrong = torch.tensor(fake_classes([s.label for s in samples], len(blackbox.classes), count), device=device)
        total += float(masker(images, wrong).float().mean((1, 2, 3)).sum())
        count += len(samples)
    masker.train(was_training)
    return total / max(count, 1)


def validate(
    masker: nn.Module, blackbox: BlackBox, dataset: EvalDataset, limit: int | None, device: torch.device
) -> dict:
    """evaluate_masker's summary (errors in %) + `mask_fake`, `seconds`, floats to 4 decimals as model cards and
    val.csv store them; limit: the first N images (None: all)."""
    from trainer.evaluation.evaluate import evaluate_masker

    started = time.perf_counter()
    summary = evaluate_masker(masker, blackbox, dataset, limit=limit, device=device, batch_size=32)
    summary["mask_fake"] = fake_class_mask_mean(masker, blackbox, dataset, limit, device)
    summary["seconds"] = time.perf_counter() - started
    return _rounded(summary)


def held_out(everything: dict, selection: dict) -> dict:
    """The numbers on the images of `everything` that are not in `selection` (its first images), from the means."""
    total, chosen = everything["images"], selection["images"]
    rest = total - chosen
    if rest <= 0:
        return {}

    def remainder(key: str) -> float:
        return round((everything[key] * total - selection[key] * chosen) / rest, 4)

    return {"images": rest, **{key: remainder(key) for key in ("loc_error_paper", "loc_error_mean", "saliency_metric")}}


def _rounded(summary: dict) -> dict:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in summary.items()}


def evaluation_command(data: str) -> str:
    """The command that reproduces a card's evaluation numbers (the data folder in portable form)."""
    return f"python -m trainer evaluate --model MODEL --data {portable_path(data)} --methods model,center"
