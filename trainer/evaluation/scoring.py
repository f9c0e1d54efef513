"""Run one method on a batch of images and score it: localisation (both protocols), saliency metric, time, and
(when asked) faithfulness: deletion and insertion AUC, SSR and SDR of the thresholded map
(trainer.evaluation.faithfulness).

Maps are computed on the images resized to the black box's input size (224) and mapped back (bilinear) to the
evaluated image size (227 for the dev set), where the boxes and IoUs are measured. Faithfulness is measured at the
black box's input size, on the map as computed there (box methods: the box drawn there).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import DataError
from engine.models.blackbox import BlackBox
from trainer.data.boxes import EvalDataset, Sample
from trainer.evaluation import faithfulness
from trainer.evaluation.baselines import BoxMethod, MapMethod, normalise_per_image
from trainer.evaluation.metrics import (
    HIT_IOU,
    PAPER_THRESHOLD,
    best_iou,
    box_mean,
    box_paper,
    boxes_mask,
    full_box,
    saliency_scores,
)

ROW_FIELDS = (
    "file",
    "label",
    "method",
    "hit_paper",
    "hit_mean",
    "iou_paper",
    "iou_mean",
    "saliency",
    "empty_mask",
    "mask_mean",
    "blackbox_correct",
    "ms",
    "warmup",
    "probability",
    "deletion_auc",
    "insertion_auc",
    "region_area",
    "preserved",
    "destroyed",
    "ssr",
    "sdr",
)
FAITHFULNESS_FIELDS = ROW_FIELDS[ROW_FIELDS.index("deletion_auc") :]


@dataclass
class MethodOutput:
    """What one method answered for a batch: per image the map (None for box methods) and boxes."""

    maps: list[np.ndarray | None]
    paper_boxes: list[np.ndarray | None]
    mean_boxes: list[np.ndarray | None]
    saliency_boxes: list[list[np.ndarray]]
    seconds: float
    input_maps: torch.Tensor  # (B, 1, S, S) at the black box's input size: the map (box methods: the boxes drawn)
    regions: torch.Tensor  # (B, 1, S, S) 0/1: the map above the paper threshold (box methods: the boxes)


def image_batch(samples: list[Sample], size: int, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) images -> (B, 3, size, size) floats in [0, 1] on `device`.

    Resized like the saliency metric's crops (bicubic on uint8, saturating): the Max box crop is then exactly the
    image every method explains, and the black box's top-1 on the dev set is the reference 80.3%."""
    resized = [
        s.image
        if s.image.shape[:2] == (size, size)
        else cv2.resize(s.image, (size, size), interpolation=cv2.INTER_CUBIC)
        for s in samples
    ]
    return torch.from_numpy(np.stack(resized)).to(device).permute(0, 3, 1, 2).float() / 255


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_method(
    method: BoxMethod | MapMethod, samples: list[Sample], images: torch.Tensor, classes: torch.Tensor
) -> MethodOutput:
    """The method's answer for every sample; `images` (B, 3, S, S) are the samples at the black box's input size."""
    height, width = samples[0].image.shape[:2]
    size = images.shape[-1]
    if isinstance(method, BoxMethod):
        start = time.perf_counter()
        boxes = [method.boxes(width, height, s.boxes) for s in samples]
        seconds = time.perf_counter() - start
        firsts: list[np.ndarray | None] = [b[0] for b in boxes]
        drawn = torch.from_numpy(np.stack([boxes_mask(b, width, height, size) for b in boxes]))[:, None]
        drawn = drawn.to(images.device)
        return MethodOutput([None] * len(samples), firsts, list(firsts), boxes, seconds, drawn, drawn)
    _synchronize(images.device)
    start = time.perf_counter()
    maps = method.maps(images, classes)
    _synchronize(images.device)
    seconds = time.perf_counter() - start
    if method.normalised:
        maps = normalise_per_image(maps)
    input_maps = maps.detach().float()
    regions = (input_maps > PAPER_THRESHOLD).float()
    maps = F.interpolate(input_maps, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)
    arrays = list(maps[:, 0].cpu().numpy())
    paper = [box_paper(m) for m in arrays]
    mean = [box_mean(m) for m in arrays]
    # an empty mask claims nothing: its saliency metric is that of the whole image (and it is counted as empty)
    saliency = [[b if b is not None else full_box(width, height)] for b in paper]
    return MethodOutput(list(arrays), paper, mean, saliency, seconds, input_maps, regions)


def faithfulness_columns(
    blackbox: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    output: MethodOutput,
    ref: faithfulness.Reference,
    steps: int,
) -> list[dict]:
    """Per image: deletion and insertion AUC (`steps` steps), the thresholded map's area (fraction of the image), its
    preserved and destroyed probabilities, and whether SSR and SDR hold (1/0)."""
    deletion, insertion = faithfulness.deletion_insertion(blackbox, images, classes, output.input_maps, ref, steps)
    preserved, destroyed = faithfulness.evidence(blackbox, images, classes, output.regions, ref)
    ssr, sdr = faithfulness.ssr_holds(preserved, ref), faithfulness.sdr_holds(destroyed, ref)
    columns = zip(
        faithfulness.area_under(deletion).tolist(),
        faithfulness.area_under(insertion).tolist(),
        output.regions.flatten(1).mean(1).tolist(),
        preserved.tolist(),
        destroyed.tolist(),
        ssr.tolist(),
        sdr.tolist(),
    )
    return [
        {
            "deletion_auc": round(d, 6),
            "insertion_auc": round(i, 6),
            "region_area": round(area, 6),
            "preserved": round(kept, 6),
            "destroyed": round(left, 6),
            "ssr": int(holds_ssr),
            "sdr": int(holds_sdr),
        }
        for d, i, area, kept, left, holds_ssr, holds_sdr in columns
    ]


def score(
    method: BoxMethod | MapMethod,
    output: MethodOutput,
    samples: list[Sample],
    blackbox: BlackBox,
    answers: tuple[list[bool], list[float]],
    device: torch.device,
    warmup: bool = False,
    faithful: list[dict] | None = None,
) -> list[dict]:
    """One row per image (ROW_FIELDS). `answers`: (top-1 correct, target probability) per image (blackbox_answers);
    `warmup`: the method's first batch in this run (its time is not averaged);
    `faithful`: the faithfulness columns per image (faithfulness_columns), or None (left empty)."""
    images = [s.image for s in samples]
    labels = [s.label for s in samples]
    correct, probabilities = answers
    saliency = saliency_scores(blackbox, images, output.saliency_boxes, labels, device, blackbox.input_size)
    ms = 1000 * output.seconds / len(samples)
    rows = []
    for index, sample in enumerate(samples):
        mask = output.maps[index]
        iou_paper = best_iou(output.paper_boxes[index], sample.boxes)
        iou_mean = best_iou(output.mean_boxes[index], sample.boxes)
        rows.append(
            {
                "file": sample.file,
                "label": sample.label,
                "method": method.name,
                "hit_paper": int(iou_paper > HIT_IOU),
                "hit_mean": int(iou_mean > HIT_IOU),
                "iou_paper": round(iou_paper, 5),
                "iou_mean": round(iou_mean, 5),
                "saliency": round(saliency[index], 6),
                "empty_mask": int(output.paper_boxes[index] is None),
                "mask_mean": round(float(mask.mean()), 6) if mask is not None else "",
                "blackbox_correct": int(correct[index]),
                "ms": round(ms, 3),
                "warmup": int(warmup),
                "probability": round(probabilities[index], 6),
                **(faithful[index] if faithful is not None else dict.fromkeys(FAITHFULNESS_FIELDS, "")),
            }
        )
    return rows


@torch.no_grad()
def blackbox_answers(
    blackbox: nn.Module, images: torch.Tensor, classes: torch.Tensor
) -> tuple[list[bool], list[float]]:
    """Per image: whether the black box's top-1 class is the ground truth, and its probability of the ground truth."""
    logits = blackbox(images).float()
    probabilities = F.softmax(logits, dim=1).gather(1, classes[:, None])[:, 0]
    return (logits.argmax(1) == classes).cpu().tolist(), probabilities.cpu().tolist()


def iter_batches(
    dataset: EvalDataset, indices: list[int], batch_size: int, errors: list[str]
) -> Iterator[list[Sample]]:
    """Loaded samples in batches; images that cannot be used are appended to `errors` and left out."""
    batch: list[Sample] = []
    for index in indices:
        try:
            sample = dataset.load(index)
        except DataError as error:
            errors.append(str(error))
            continue
        if sample.dropped_boxes:
            errors.append(f"{sample.file}: {sample.dropped_boxes} box(es) outside the image left out")
        batch.append(sample)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def summarise(rows: list[dict]) -> dict:
    """Rows of one method -> its table line: errors in %, mean saliency metric, ms per image, mean mask."""

    def mean(key: str, selected: list[dict] = rows) -> float:
        values = [float(r[key]) for r in selected if r.get(key, "") != ""]  # "": not measured (no faithfulness)
        return float(np.mean(values)) if values else float("nan")

    # a method's first batch pays one-off start-up costs (CUDA kernel loading, cuDNN autotuning, allocator growth):
    # it is left out of the time per image unless there is nothing else
    timed = [r for r in rows if str(r.get("warmup", "0")) != "1"] or rows

    return {
        "images": len(rows),
        "loc_error_paper": 100 * (1 - mean("hit_paper")),
        "loc_error_mean": 100 * (1 - mean("hit_mean")),
        "saliency_metric": mean("saliency"),
        "ms_per_image": mean("ms", timed),
        "mean_mask": mean("mask_mean"),
        "empty_masks": int(sum(int(r["empty_mask"]) for r in rows)),
        "blackbox_top1": 100 * mean("blackbox_correct"),
        "deletion_auc": mean("deletion_auc"),
        "insertion_auc": mean("insertion_auc"),
        "region_area": mean("region_area"),
        "ssr_share": 100 * mean("ssr"),
        "sdr_share": 100 * mean("sdr"),
    }
