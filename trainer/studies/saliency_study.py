"""What the paper's saliency metric rewards: `python -m trainer saliency-study`.

The saliency metric s = log(max(a, 0.05)) - log(p) scores the paper-protocol box of a map: a = its area, p = the
black box's probability of the class on the box's crop, resized to the black box's input. This command takes
maps of the masking model and of Grad-CAM on a boxes set and reports, per method and mask threshold:
- localisation error (paper protocol at that threshold) and the saliency metric, split into its two terms (mean
  log max(a, 0.05) and mean -log p), the share of boxes under the 0.05 area floor, the share of boxes smaller than
  the ground-truth box they overlap most, and the metric on images with one and with several ground-truth boxes;
- both on the first `--split` images and on the rest, so that a threshold chosen on the first part is reported on
  the other;
- a contact sheet of the images where Grad-CAM's box (threshold 0.5) is at most half the ground-truth box and
  scores better than the ground-truth box itself: the metric rewarding a part over the object.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.api import load_masker
from engine.models.blackbox import BlackBox
from engine.paths import data_root, default_model_path
from trainer.cli import (
    COUNT,
    COUNT_OR_ZERO,
    Parser,
    UsageError,
    argument_checks,
    device_for,
    model_card,
    output_folder,
    run_command,
)
from trainer.data.boxes import Sample, open_dataset
from trainer.evaluation.baselines import GradCam, MapMethod, MaskingModel, normalise_per_image
from trainer.evaluation.metrics import HIT_IOU, MIN_AREA, best_iou, box_paper, crop_probabilities, crop_resize, full_box
from trainer.evaluation.scoring import image_batch, iter_batches

PROG = "python -m trainer saliency-study"
DEFAULT_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
ROW_FIELDS = ("file", "method", "threshold", "boxes", "hit", "area", "gt_area", "probability", "saliency")


class CropCache:
    """The black box's probability of the class on a box's crop, computed once per (image, rounded box)."""

    def __init__(self, blackbox: BlackBox, device: torch.device) -> None:
        self.blackbox, self.device = blackbox, device
        self.known: dict[tuple, float] = {}

    def probabilities(self, samples: list[Sample], boxes: list[np.ndarray]) -> list[float]:
        size = self.blackbox.input_size
        keys = [(s.file, tuple(int(round(float(v))) for v in box)) for s, box in zip(samples, boxes)]
        first: dict[tuple, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        todo = [key for key in first if key not in self.known]
        if todo:
            crops = [crop_resize(samples[first[key]].image, boxes[first[key]], size)[0] for key in todo]
            labels = [samples[first[key]].label for key in todo]
            for key, probability in zip(todo, crop_probabilities(self.blackbox, crops, labels, self.device)):
                self.known[key] = float(probability)
        return [self.known[key] for key in keys]


def study_rows(
    method: MapMethod,
    samples: list[Sample],
    images: torch.Tensor,
    cache: CropCache,
    thresholds: tuple[float, ...],
) -> tuple[list[dict], list[np.ndarray]]:
    """Per image and threshold: the paper box's hit, area, the GT box it overlaps most, p and the saliency metric."""
    height, width = samples[0].image.shape[:2]
    classes = torch.tensor([s.label for s in samples], device=images.device)
    maps = method.maps(images, classes)
    if method.normalised:
        maps = normalise_per_image(maps)
    maps = F.interpolate(maps.float(), size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)
    arrays = list(maps[:, 0].detach().cpu().numpy())
    rows = []
    for threshold in thresholds:
        boxes = [box_paper(m, threshold) for m in arrays]
        scored = [b if b is not None else full_box(width, height) for b in boxes]
        probabilities = cache.probabilities(samples, scored)
        for sample, box, kept, probability in zip(samples, boxes, scored, probabilities):
            area = _area(kept) / (width * height)
            rows.append(
                {
                    "file": sample.file,
                    "method": method.name,
                    "threshold": threshold,
                    "boxes": len(sample.boxes),
                    "hit": int(best_iou(box, sample.boxes) > HIT_IOU),
                    "area": round(area, 6),
                    "gt_area": round(_area(_nearest_gt(kept, sample.boxes)) / (width * height), 6),
                    "probability": round(probability, 6),
                    "saliency": round(math.log(max(area, MIN_AREA)) - math.log(max(probability, 1e-12)), 6),
                }
            )
    return rows, arrays


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


def _nearest_gt(box: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """The ground-truth box that `box` overlaps most (by IoU)."""
    ious = [best_iou(box, gt[None]) for gt in gt_boxes]
    return gt_boxes[int(np.argmax(ious))]


def gt_rows(samples: list[Sample], cache: CropCache) -> list[dict]:
    """The ground-truth boxes' own saliency metric (averaged over an image's boxes, the paper's rule; area and p:
    their means over the boxes)."""
    height, width = samples[0].image.shape[:2]
    flat = [(sample, box) for sample in samples for box in sample.boxes]
    probabilities = cache.probabilities([s for s, _ in flat], [b for _, b in flat])
    per_image: dict[str, list[float]] = {}
    areas: dict[str, list[float]] = {}
    seen: dict[str, list[float]] = {}
    for (sample, box), probability in zip(flat, probabilities):
        area = _area(box) / (width * height)
        per_image.setdefault(sample.file, []).append(math.log(max(area, MIN_AREA)) - math.log(max(probability, 1e-12)))
        areas.setdefault(sample.file, []).append(area)
        seen.setdefault(sample.file, []).append(probability)
    return [
        {
            "file": s.file,
            "method": "gt",
            "threshold": "",
            "boxes": len(s.boxes),
            "hit": 1,
            "area": round(float(np.mean(areas[s.file])), 6),
            "gt_area": round(float(np.mean(areas[s.file])), 6),
            "probability": round(float(np.mean(seen[s.file])), 6),
            "saliency": round(float(np.mean(per_image[s.file])), 6),
        }
        for s in samples
    ]


def summarise(rows: list[dict]) -> dict:
    """One method at one threshold: LE, saliency metric and its terms, box sizes, single vs several GT boxes."""

    def mean(values: list[float]) -> float:
        return round(float(np.mean(values)), 4) if values else float("nan")

    areas = [float(r["area"]) for r in rows]
    probabilities = [float(r["probability"]) for r in rows if r["probability"] != ""]
    return {
        "images": len(rows),
        "loc_error_paper": mean([100 * (1 - int(r["hit"])) for r in rows]),
        "saliency_metric": mean([float(r["saliency"]) for r in rows]),
        "log_area_term": mean([math.log(max(a, MIN_AREA)) for a in areas]),
        "minus_log_p_term": mean([-math.log(max(p, 1e-12)) for p in probabilities]),
        "mean_area": mean(areas),
        "floored_share": mean([100 * (a < MIN_AREA) for a in areas]),
        "smaller_than_gt_share": mean([100 * (float(r["area"]) < float(r["gt_area"])) for r in rows]),
        "saliency_single_box": mean([float(r["saliency"]) for r in rows if int(r["boxes"]) == 1]),
        "saliency_several_boxes": mean([float(r["saliency"]) for r in rows if int(r["boxes"]) > 1]),
        "images_several_boxes": sum(int(r["boxes"]) > 1 for r in rows),
    }


def part_examples(rows: list[dict], count: int) -> list[str]:
    """Files where Grad-CAM's box at 0.5 is at most half its ground-truth box and scores better than the GT boxes,
    the largest gap in the metric first."""
    gradcam = {r["file"]: r for r in rows if r["method"] == "gradcam" and float(r["threshold"]) == 0.5}
    gt = {r["file"]: r for r in rows if r["method"] == "gt"}
    found = [
        (float(gt[f]["saliency"]) - float(r["saliency"]), f)
        for f, r in gradcam.items()
        if f in gt and float(r["area"]) <= 0.5 * float(r["gt_area"]) and float(r["saliency"]) < float(gt[f]["saliency"])
    ]
    return [f for _, f in sorted(found, reverse=True)[:count]]


def part_sheet(entries: list[dict], path: Path) -> Path:
    """One row per example: the image with the GT boxes (green), Grad-CAM's box (red) and the masking model's box
    (blue), then the crops the metric scores (GT box, Grad-CAM's box, the model's box) captioned with p and s."""
    tile = 227
    sheet = np.full((len(entries) * (tile + 20), 4 * tile, 3), 255, np.uint8)
    for row, entry in enumerate(entries):
        top = row * (tile + 20)
        image = np.ascontiguousarray(entry["image"].copy())
        for box, colour in [(b, (0, 200, 0)) for b in entry["gt"]] + [
            (entry["gradcam_box"], (230, 30, 30)),
            (entry["model_box"], (30, 60, 230)),
        ]:
            if box is not None:
                x0, y0, x1, y1 = (int(round(float(v))) for v in box)
                cv2.rectangle(image, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), colour, 2)
        sheet[top : top + tile, :tile] = image
        for column, (crop, caption) in enumerate(entry["crops"], start=1):
            sheet[top : top + tile, column * tile : (column + 1) * tile] = cv2.resize(crop, (tile, tile))
            cv2.putText(
                sheet, caption, (column * tile + 3, top + tile + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
            )
        cv2.putText(sheet, entry["title"], (3, top + tile + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


# --- the command line -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=None, help="masking model file (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=None, help="boxes set (default: $SALIENCY_DATA/imagenet-val-dev)")
    parser.add_argument("--limit", type=COUNT, default=None, help="the first N images (all)")
    parser.add_argument("--split", type=COUNT_OR_ZERO, default=200, help="report the first N images apart (200)")
    parser.add_argument(
        "--thresholds",
        default=",".join(map(str, DEFAULT_THRESHOLDS)),
        help=f"mask thresholds, comma-separated ({','.join(map(str, DEFAULT_THRESHOLDS))})",
    )
    parser.add_argument("--examples", type=COUNT_OR_ZERO, default=8, help="rows of the contact sheet (8)")
    parser.add_argument("--batch-size", type=COUNT, default=8, help="images per batch (8)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.add_argument("--out", type=Path, default=Path("runs/saliency-study"), help="output folder")
    return parser


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--thresholds: numbers in (0, 1) separated by commas, not {text!r}") from None
    if not values or not all(0 < t < 1 for t in values):
        raise UsageError(f"--thresholds: numbers in (0, 1) separated by commas, not {text!r}")
    return tuple(sorted(set(values) | {0.5}))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args.thresholds)
    device = device_for("--device", args.device)
    model_path = args.model if args.model is not None else default_model_path()
    model_card("--model", model_path)
    data = args.data if args.data is not None else data_root() / "imagenet-val-dev"
    with argument_checks("--data"):
        dataset = open_dataset(data)
    output_folder("--out", args.out)
    with argument_checks("--model"):
        model = load_masker(model_path, device)
    blackbox = model.blackbox
    methods: list[MapMethod] = [MaskingModel(model.masker), GradCam(blackbox)]
    cache = CropCache(blackbox, device)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    rows: list[dict] = []
    kept: dict[str, dict] = {}  # what the contact sheet needs, per file
    interrupted = False
    try:
        for samples in iter_batches(dataset, list(range(count)), args.batch_size, []):
            images = image_batch(samples, blackbox.input_size, device)
            batch_rows = gt_rows(samples, cache)
            for method in methods:
                batch_rows += study_rows(method, samples, images, cache, thresholds)[0]
            rows += batch_rows  # whole batches only: an interrupted one leaves no rows behind
            for sample in samples:
                kept[sample.file] = {"sample": sample}
            print(f"{len(kept)}/{count} images", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # Ctrl-C: the study of the images done so far
        interrupted = True
        print(f"interrupted: the study covers the first {len(kept)} images", file=sys.stderr)
        if not kept:
            return 130
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_image.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    files = list(kept)
    parts = {"all": set(files), f"first {args.split}": set(files[: args.split]), "rest": set(files[args.split :])}
    summary: dict = {}
    for part, chosen in parts.items():
        selected = [r for r in rows if r["file"] in chosen]
        summary[part] = {"gt": summarise([r for r in selected if r["method"] == "gt"])}
        for method in methods:
            for threshold in thresholds:
                lines = [r for r in selected if r["method"] == method.name and r["threshold"] == threshold]
                summary[part][f"{method.name}@{threshold}"] = summarise(lines)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    if args.examples:
        examples = part_examples(rows, args.examples)
        entries = _sheet_entries(examples, kept, rows, methods, blackbox, device)
        if entries:
            print(f"written: {part_sheet(entries, args.out / 'part_over_object.png')}")
    return 130 if interrupted else 0


def _sheet_entries(
    files: list[str],
    kept: dict[str, dict],
    rows: list[dict],
    methods: list[MapMethod],
    blackbox: BlackBox,
    device: torch.device,
) -> list[dict]:
    """The contact sheet's rows: the boxes at threshold 0.5 recomputed for the chosen files (a few images)."""
    entries = []
    size = blackbox.input_size
    for file in files:
        sample: Sample = kept[file]["sample"]
        images = image_batch([sample], size, device)
        height, width = sample.image.shape[:2]
        boxes = {}
        for method in methods:
            maps = method.maps(images, torch.tensor([sample.label], device=device))
            if method.normalised:
                maps = normalise_per_image(maps)
            array = F.interpolate(maps.float(), size=(height, width), mode="bilinear", align_corners=False)[0, 0]
            boxes[method.name] = box_paper(array.detach().cpu().numpy())
        by_method = {
            r["method"]: r for r in rows if r["file"] == file and r["threshold"] in ("", 0.5) and r["method"] != ""
        }
        crops = []
        for name, box in (("gt", sample.boxes[0]), ("gradcam", boxes["gradcam"]), ("model", boxes["model"])):
            box = box if box is not None else full_box(width, height)
            row = by_method[name]
            area, probability, saliency = (float(row[key]) for key in ("area", "probability", "saliency"))
            caption = f"{name}: a {area:.3f} p {probability:.3f} s {saliency:.2f}"
            crops.append((crop_resize(sample.image, box, size)[0], caption))
        title = f"{file[-13:-5]} class {sample.label}"
        entries.append(
            {
                "image": sample.image,
                "gt": sample.boxes,
                "gradcam_box": boxes["gradcam"],
                "model_box": boxes["model"],
                "crops": crops,
                "title": title,
            }
        )
    return entries


def _print_summary(summary: dict) -> None:
    columns = (
        ("loc_error_paper", "LE %", "{:.1f}"),
        ("saliency_metric", "SM", "{:.3f}"),
        ("log_area_term", "log a", "{:.3f}"),
        ("minus_log_p_term", "-log p", "{:.3f}"),
        ("mean_area", "area", "{:.3f}"),
        ("floored_share", "a<.05 %", "{:.1f}"),
        ("smaller_than_gt_share", "<GT %", "{:.1f}"),
        ("saliency_single_box", "SM 1 box", "{:.3f}"),
        ("saliency_several_boxes", "SM >1 box", "{:.3f}"),
    )
    for part, lines in summary.items():
        print(f"\n{part} ({lines['gt']['images']} images)")
        print(f"{'method@threshold':<18}" + "".join(f"{title:>10}" for _, title, _ in columns))
        for name, line in lines.items():
            cells = "".join(
                f"{'-' if isinstance(line.get(key), float) and math.isnan(line[key]) else fmt.format(line[key]):>10}"
                for key, _, fmt in columns
            )
            print(f"{name:<18}{cells}")
