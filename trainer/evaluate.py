"""Evaluation: localisation error (two protocols), saliency metric and speed, for the masking model and baselines.

Library: `evaluate_masker(masker, blackbox, dataset)` (cheap, the masking model alone; the trainer calls it for
validation). CLI: `python -m trainer evaluate --help`.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.baselines import MaskingModel
from trainer.boxes import EvalDataset, open_dataset
from trainer.scoring import blackbox_correct, image_batch, iter_batches, run_method, score, summarise


def evaluate_masker(
    masker: nn.Module,
    blackbox: nn.Module,
    dataset: EvalDataset | str,
    limit: int | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> dict:
    """The masking model's localisation errors (%, paper and mean protocols), saliency metric and mean mask.

    `dataset`: an EvalDataset or a folder with boxes.csv; `limit`: the first N images. Returns the summary of
    `trainer.scoring.summarise` plus `errors` (images that could not be used). The masker's train/eval mode is
    restored afterwards.
    """
    device = torch.device(device)
    if not isinstance(dataset, EvalDataset):
        dataset = open_dataset(dataset)
    indices = list(range(len(dataset) if limit is None else min(limit, len(dataset))))
    method = MaskingModel(masker)
    was_training = masker.training
    masker.eval()
    rows: list[dict] = []
    errors: list[str] = []
    try:
        for samples in iter_batches(dataset, indices, batch_size, errors):
            images = image_batch(samples, blackbox.input_size, device)
            classes = torch.tensor([s.label for s in samples], device=device)
            correct = blackbox_correct(blackbox, images, classes)
            output = run_method(method, samples, images, classes)
            rows += score(method, output, samples, blackbox, correct, device)
    finally:
        masker.train(was_training)
    return {**summarise(rows), "errors": errors}
