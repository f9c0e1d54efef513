"""The arguments of `python -m trainer evaluate`: the parser (its --help explains methods, columns and outputs) and
the checks that run before a model or an image is loaded (trainer.cli: one line and exit status 2 for a bad one)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.paths import DEFAULT_MODEL, data_root, default_model_path
from engine.runtime.gate import GATE
from trainer.cli import (
    COUNT,
    COUNT_OR_ZERO,
    PROBABILITY,
    Parser,
    UsageError,
    argument_checks,
    device_for,
    existing_folder,
    model_card,
    output_folder,
)
from trainer.data.boxes import EvalDataset, open_dataset
from trainer.evaluation.baselines import DEFAULT_METHODS, METHODS, MODEL_METHODS
from trainer.evaluation.faithfulness import DEFAULT_STEPS
from trainer.evaluation.report import check_resumable

PROG = "python -m trainer evaluate"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=textwrap.fill(
            "Weakly supervised localisation error (two protocols), saliency metric and speed of the masking model and "
            "of baselines, on the same images and black box, in one table. Every argument is checked before a model "
            "or an image is loaded: a bad one is answered with one line and exit status 2, and nothing is written. "
            "summary.json names the data by name, content hash and image count, not by this machine's paths.",
            100,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of images with boxes.csv (default: $SALIENCY_DATA/imagenet-val-dev), or of "
        "ImageNet validation images when --annotations is given",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="folder of ImageNet's bounding-box XML files (ILSVRC2012_val_*.xml) for --data",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"masking model file (default: the bundled {DEFAULT_MODEL.name}); its card names the black box",
    )
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="evaluate an untrained masker (random decoder, seed 0) as the model row, labelled so (not with --model)",
    )
    parser.add_argument(
        "--blackbox",
        default="efficientnet_lite0",
        help="black box when no model file is used (default: efficientnet_lite0)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from: {', '.join(METHODS)} (default: all)",
    )
    parser.add_argument("--limit", type=COUNT, default=None, help="evaluate the first N images only (N >= 1)")
    parser.add_argument(
        "--iterations", type=COUNT, default=300, help="iterations of the iterative baseline (300; >= 1)"
    )
    parser.add_argument(
        "--gate",
        type=PROBABILITY,
        default=GATE,
        help=f"model-gated: the mask is zeroed where the black box gives the target less than this ({GATE:g}, the "
        f"engine's gate)",
    )
    parser.add_argument(
        "--rise-masks", type=COUNT, default=1000, help="random masks of the RISE baseline per image (1000; >= 1)"
    )
    parser.add_argument(
        "--faithfulness-steps",
        type=COUNT_OR_ZERO,
        default=DEFAULT_STEPS,
        help=f"steps of the deletion and insertion curves ({DEFAULT_STEPS}: {100 // DEFAULT_STEPS}%% of the pixels "
        f"each; 0: no faithfulness columns, which saves 2 x steps black-box passes per image and method)",
    )
    parser.add_argument("--batch-size", type=COUNT, default=8, help="images per batch for every method (8; >= 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate"), help="output folder (runs/evaluate)")
    parser.add_argument(
        "--sheet", type=COUNT_OR_ZERO, default=8, help="images on the contact sheet (8; 0: no contact sheet)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the per-image rows already in OUT/per_image.csv and evaluate only the rest",
    )
    return parser


EPILOG = """\
methods: center (centred box, half the image area), max (the whole image), gt (the ground-truth boxes),
gradient (Simonyan et al.: |d class score / d pixel|), gradcam (Grad-CAM, the grad-cam package, on the black
box's last feature map), iterative (Fong & Vedaldi: a 28x28 mask optimised per image for --iterations steps with
the training objective; by far the slowest), rise (RISE, Petsiuk et al.: --rise-masks random masks weighted by the
black box's probability; a black-box pass per mask and image), model (the masking model: one forward pass),
model-gated (the masking model, its mask zeroed where the black box gives the target less than --gate).
Gradient, Grad-CAM and RISE maps are rescaled per image to [0, 1] (min-max) before thresholding.

columns: LE paper = localisation error, threshold 0.5, tightest box around everything above (an empty mask is a
miss); LE mean = threshold at the map's mean, box of the largest connected component (Phang et al.); hit = IoU > 0.5
with any ground-truth box, the ground-truth class as target. saliency = log(max(a, 0.05)) - log(p) on the paper
box (lower is better). ms/image = the method's own time, batch time / batch size, first batch left out.
Faithfulness (at the black box's input size, the ground-truth class as target; removed pixels show the image
blurred with sigma 10 at 224, the paper's evidence removal, for every method): deletion / insertion = area under
the black box's probability of the target as the map's pixels are removed from the image / added to the blurred
image, most salient first, in --faithfulness-steps equal steps (ties in a fixed random order; lower / higher is
better); M = the map above 0.5 (box methods: the box), region = its mean area; SSR % / SDR % = share of images
where the preserved view Phi(X, M) keeps >= 50% of the probability on the image / the destroyed view Phi(X, 1 - M)
leaves <= 10% of it.
"""


@dataclass
class EvaluationPlan:
    """A checked command line."""

    args: argparse.Namespace
    names: list[str]  # the methods, in order, without duplicates (MODEL_METHODS left out when there is no model file)
    device: torch.device
    data: Path
    dataset: EvalDataset
    model: Path | None  # the masking model file, None for no model row or --untrained


def plan_evaluation(args: argparse.Namespace) -> EvaluationPlan:
    """Every argument checked without loading a model or an image: methods, device, data folders, the model file's
    card, the output folder and what --resume would append to."""
    names = _method_names(args.methods)
    device = device_for("--device", args.device)
    data = args.data if args.data is not None else data_root() / "imagenet-val-dev"
    existing_folder("--data", data)
    if args.annotations is not None:
        existing_folder("--annotations", args.annotations)
    elif not (data / "boxes.csv").is_file():
        raise UsageError(
            f"--data {data} has no boxes.csv; for the ImageNet validation set pass the folder of its bounding-box "
            f"XML files with --annotations"
        )
    with argument_checks("--data"):
        dataset = open_dataset(data, annotations=args.annotations)
    if args.untrained and args.model is not None:
        raise UsageError("--untrained evaluates an untrained masker instead of --model; give one of them")
    model = None
    if set(MODEL_METHODS) & set(names) and not args.untrained:
        model = args.model if args.model is not None else default_model_path()
        if not model.exists() and args.model is None and args.methods == ",".join(DEFAULT_METHODS):
            print(f"note: the bundled model {model} does not exist; the model rows are left out", file=sys.stderr)
            names, model = [name for name in names if name not in MODEL_METHODS], None
        elif not model.exists():
            raise UsageError(
                f"the masking model {model} does not exist (train one with `python -m trainer train`, "
                f"pass --model PATH, or --untrained for an untrained masker)"
            )
        else:
            model_card("--model", model)
    output_folder("--out", args.out)
    if args.resume:
        with argument_checks("--resume"):
            check_resumable(args.out / "per_image.csv")
    return EvaluationPlan(args, names, device, Path(data), dataset, model)


def _method_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise UsageError(f"--methods: unknown method(s) {unknown or text!r}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))
