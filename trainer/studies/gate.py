"""The black box's gate for the masking model, and how to choose its threshold: `python -m trainer gate`.

Rule: when the black box gives the target class less than `threshold` on the frame, the masking model's answer is
"nothing to show" (an empty mask; the app says that the black box does not see the class). What it buys: the
share of weak-class cases (`python -m trainer weak-classes`, cases.csv) that pass once gated. What it costs: the
localisation error of the masking model with the ground-truth class as target, from an evaluation's per_image.csv
(`python -m trainer evaluate --methods model`): an emptied mask misses in the paper protocol; in the mean protocol
an empty (constant) mask is salient everywhere, so its box is the whole image, which hits where the whole image's
box has IoU > 0.5 with a ground-truth box. Both are reported on the first `--split` images (where a threshold is
chosen) and on the rest (where it is reported).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from engine.paths import data_root
from trainer.cli import COUNT_OR_ZERO, Parser, UsageError, argument_checks, run_command
from trainer.data.boxes import open_dataset
from trainer.evaluation.metrics import PAPER_THRESHOLD, full_box, is_hit

PROG = "python -m trainer gate"
DEFAULT_THRESHOLDS = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01)


def gated_errors(rows: list[dict], whole_image_hits: dict[str, bool], threshold: float) -> tuple[float, float]:
    """(paper, mean) localisation errors in % of the masking model's rows when masks with probability < threshold
    are emptied. rows: per_image.csv rows with `probability`, `hit_paper`, `hit_mean`."""
    paper, mean = [], []
    for row in rows:
        open_gate = float(row["probability"]) >= threshold
        paper.append(int(row["hit_paper"]) if open_gate else 0)
        mean.append(int(row["hit_mean"]) if open_gate else int(whole_image_hits[row["file"]]))
    return 100 * (1 - float(np.mean(paper))), 100 * (1 - float(np.mean(mean)))


def weak_pass_share(cases: list[dict], threshold: float) -> float:
    """Share of weak-class cases that pass with the gate: they passed, or the gate empties their mask."""
    return float(np.mean([int(c["passes"]) or float(c["probability"]) < threshold for c in cases]))


def weak_figures(cases: list[dict], threshold: float) -> tuple[float, float, float]:
    """With the gate: (share of cases that pass, mean mask over the cases, share of frames without a pixel > 0.5
    in any of their cases)."""
    gated = [float(c["probability"]) < threshold for c in cases]
    means = [0.0 if shut else float(c["mask_mean"]) for c, shut in zip(cases, gated)]
    blob_free: dict[tuple[str, str], bool] = {}
    for case, shut in zip(cases, gated):
        key = (case["source"], case["item"])
        blob_free[key] = blob_free.get(key, True) and (shut or float(case["mask_max"]) <= PAPER_THRESHOLD)
    return weak_pass_share(cases, threshold), float(np.mean(means)), float(np.mean(list(blob_free.values())))


def whole_image_hits(data: Path, files: set[str]) -> dict[str, bool]:
    """Per file of a boxes set: whether the whole image's box hits (IoU > 0.5 with a ground-truth box)."""
    dataset = open_dataset(data)
    hits = {}
    for index, record in enumerate(dataset.records):
        if record.file in files:
            sample = dataset.load(index)
            height, width = sample.image.shape[:2]
            hits[record.file] = is_hit(full_box(width, height), sample.boxes)
    return hits


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--evaluation", type=Path, required=True, help="per_image.csv of an evaluation with 'model'")
    parser.add_argument("--method", default="model", help="the rows of this method (model)")
    parser.add_argument("--cases", type=Path, nargs="*", default=[], help="cases.csv files of weak-classes runs")
    parser.add_argument(
        "--data", type=Path, default=None, help="the evaluation's boxes set (default: $SALIENCY_DATA/imagenet-val-dev)"
    )
    parser.add_argument("--split", type=COUNT_OR_ZERO, default=200, help="the first N images apart (200)")
    parser.add_argument(
        "--thresholds",
        default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
        help="gate thresholds, comma-separated",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--thresholds: numbers separated by commas, not {args.thresholds!r}") from None
    for path in [args.evaluation, *args.cases]:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    rows = [r for r in _read(args.evaluation) if r["method"] == args.method]
    if not rows or rows[0].get("probability", "") == "":
        raise UsageError(f"{args.evaluation}: no '{args.method}' rows with the black box's probability")
    with argument_checks("--data"):
        hits = whole_image_hits(args.data or data_root() / "imagenet-val-dev", {r["file"] for r in rows})
    parts = {"all": rows, f"first {args.split}": rows[: args.split], "rest": rows[args.split :]}
    cases = {path.parent.name: _read(path) for path in args.cases}
    header = f"{'gate':>8}" + "".join(f"{f'LE {name} ({len(part)})':>24}" for name, part in parts.items())
    print(header + "".join(f"{name:>30}" for name in cases))
    for threshold in thresholds:
        cells = ""
        for part in parts.values():
            paper, mean = gated_errors(part, hits, threshold)
            cells += f"{f'{paper:.1f} / {mean:.1f}':>24}"
        for weak in cases.values():
            share, mean_mask, frames = weak_figures(weak, threshold)
            cells += f"{f'{100 * share:.1f}% / {mean_mask:.4f} / {100 * frames:.1f}%':>30}"
        print(f"{threshold:>8g}{cells}")
    print(
        "LE: paper / mean protocol, %. Weak-class cases: share that pass (mean mask <= 0.02 and no pixel > 0.5) / "
        "mean mask / share of frames with no pixel > 0.5 in any of their cases"
    )
    return 0
