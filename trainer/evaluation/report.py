"""Evaluation outputs: the per-image CSV (appended as the run goes), the summary table (terminal, CSV, JSON, with how
it was computed) and the contact sheet PNG."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np

from engine.errors import DataError
from trainer.evaluation.scoring import ROW_FIELDS

NORMALISATION_NOTE = "maps not in [0, 1] ({}) are rescaled per image to [0, 1] (min-max) before thresholding"
PROTOCOLS = {
    "loc_error_paper": "threshold 0.5, tightest box around all pixels above; hit: IoU > 0.5 with any GT box; "
    "an empty mask is a miss (Dabkowski & Gal)",
    "loc_error_mean": "threshold at the map's mean, box of the largest 8-connected component (Phang et al.)",
    "saliency_metric": "log(max(a, 0.05)) - log(p) on the paper-protocol box (whole image for an empty mask), crop at "
    "integer pixel bounds resized bicubic to the black box input, clamped to 0..255; GT boxes: mean over an "
    "image's boxes",
}

FAITHFULNESS_NOTE = (
    "deletion / insertion: area under the black box's probability of the target as the map's pixels are removed "
    "from the image / added to the blurred image (sigma 10 at 224), most salient first, {steps} equal steps, ties in "
    "a fixed random order per image; M = the map above 0.5 (box methods: the box), region: its mean area; SSR / SDR: "
    "share of images where Phi(X, M) keeps >= 50% of the probability on the image / Phi(X, 1 - M) leaves <= 10% of "
    "it, blurred fill"
)

TABLE_COLUMNS = (
    ("loc_error_paper", "LE paper %", "{:.1f}"),
    ("loc_error_mean", "LE mean %", "{:.1f}"),
    ("saliency_metric", "saliency", "{:.3f}"),
    ("deletion_auc", "deletion", "{:.3f}"),
    ("insertion_auc", "insertion", "{:.3f}"),
    ("region_area", "region", "{:.3f}"),
    ("ssr_share", "SSR %", "{:.1f}"),
    ("sdr_share", "SDR %", "{:.1f}"),
    ("ms_per_image", "ms/image", "{:.1f}"),
)
SUMMARY_FIELDS = (
    "method",
    "label",
    "images",
    "loc_error_paper",
    "loc_error_mean",
    "saliency_metric",
    "deletion_auc",
    "insertion_auc",
    "region_area",
    "ssr_share",
    "sdr_share",
    "ms_per_image",
    "mean_mask",
    "empty_masks",
    "normalised",
)


class RowWriter:
    """Appends per-image rows to a CSV and flushes after every batch, so a crash loses at most one batch."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        fresh = not (resume and path.exists())
        if not fresh:
            check_resumable(path)
        self.handle = open(path, "w" if fresh else "a", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=ROW_FIELDS)
        if fresh:
            self.writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self.writer.writerows(rows)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def check_resumable(path: Path) -> None:
    """--resume appends to a per-image CSV: it must have the columns this version writes (or not exist yet)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), [])
    if tuple(header) != ROW_FIELDS:
        raise DataError(f"{path} has other columns than this version writes; --resume needs a new --out")


def read_rows(path: Path) -> list[dict]:
    """The rows a previous (possibly interrupted) run wrote; a half-written last line is dropped."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("ms") not in (None, "")]


def format_table(lines: list[dict]) -> str:
    """A fixed-width table: one line per method, the four columns of TABLE_COLUMNS."""
    width = max(len(line["label"]) for line in lines) + 2
    header = "method".ljust(width) + "".join(title.rjust(12) for _, title, _ in TABLE_COLUMNS)
    body = []
    for line in lines:
        cells = []
        for key, _, fmt in TABLE_COLUMNS:
            value = line.get(key)
            skip = value is None or (isinstance(value, float) and math.isnan(value))
            cells.append(("-" if skip else fmt.format(value)).rjust(12))
        body.append(line["label"].ljust(width) + "".join(cells))
    return "\n".join([header, "-" * len(header), *body])


def write_summary(out: Path, lines: list[dict], meta: dict) -> tuple[Path, Path]:
    """summary.csv (one line per method) and summary.json (the lines plus how they were computed)."""
    csv_path, json_path = out / "summary.csv", out / "summary.json"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(lines)
    document = _without_nan({**meta, "methods": lines})
    json_path.write_text(json.dumps(document, indent=2, default=_json_value, allow_nan=False) + "\n")
    return csv_path, json_path


def _without_nan(value: object) -> object:
    """NaN (a box method has no mask) becomes null: NaN is not JSON."""
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def print_report(lines: list[dict], meta: dict, errors: list[str], data: Path) -> None:
    print()
    if lines:
        print(format_table(lines))
    print(
        f"\n{meta['images']} images from {data}; black box {meta['blackbox']} "
        f"(top-1 {meta['blackbox_top1'] or float('nan'):.1f}% on them); {meta['device']}, batch {meta['batch_size']}"
    )
    if meta["normalisation"]:
        print(f"note: {meta['normalisation']}")
    if meta.get("faithfulness"):
        print(f"faithfulness: {meta['faithfulness']}")
    if errors:
        print(f"{len(errors)} problem(s) with the data (images left out or boxes dropped; all in summary.json):")
        for error in errors[:10]:
            print(f"  {error}")
    if meta["interrupted"]:
        print("interrupted: the table covers the images done so far; rerun with --resume to finish")


# --- contact sheet ------------------------------------------------------------------------------------------------

GT_COLOUR = (0, 255, 0)  # RGB
PAPER_COLOUR = (255, 40, 40)
MEAN_COLOUR = (255, 220, 0)
HEADER = 34


def contact_sheet(entries: list[dict], labels: list[str], path: Path) -> Path:
    """A grid: one row per image; first the image with its GT boxes (green), then per method its mask over the image
    with the GT boxes, the paper-protocol box (red) and the mean-protocol box (yellow).

    entries: [{"image": uint8 (H, W, 3), "gt": (K, 4), "methods": [(map or None, paper box, mean box), ...]}]."""
    height, width = entries[0]["image"].shape[:2]
    tiles_per_row = 1 + len(labels)
    sheet = np.full((HEADER + len(entries) * height, tiles_per_row * width, 3), 255, np.uint8)
    for column, text in enumerate(["GT boxes green, paper box red, mean box yellow", *labels]):
        _put_label(sheet, text, column * width, width)
    for row, entry in enumerate(entries):
        top = HEADER + row * height
        sheet[top : top + height, :width] = _draw_boxes(entry["image"], entry["gt"], GT_COLOUR)
        for column, (mask, paper, mean) in enumerate(entry["methods"], start=1):
            tile = _overlay(entry["image"], mask)
            tile = _draw_boxes(tile, entry["gt"], GT_COLOUR)
            tile = _draw_boxes(tile, [mean] if mean is not None else [], MEAN_COLOUR)
            tile = _draw_boxes(tile, [paper] if paper is not None else [], PAPER_COLOUR)
            sheet[top : top + height, column * width : (column + 1) * width] = tile
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def _overlay(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The image dimmed where the mask is low (a box method has no mask: the image as it is)."""
    if mask is None:
        return image.copy()
    weight = 0.25 + 0.75 * mask[..., None]
    return (image * weight).astype(np.uint8)


def _draw_boxes(image: np.ndarray, boxes: object, colour: tuple[int, int, int]) -> np.ndarray:
    image = np.ascontiguousarray(image)
    for box in boxes:  # type: ignore[attr-defined]
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), colour, 2)
    return image


def _put_label(sheet: np.ndarray, text: str, left: int, width: int) -> None:
    """Up to two lines of small text over one column."""
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width // 7 and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for index, content in enumerate(lines[:2]):
        cv2.putText(
            sheet, content, (left + 4, 14 + 15 * index), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
