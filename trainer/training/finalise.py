"""Ship a trained model: copy it under its final name, re-evaluated on a whole boxes set, with a fresh grid.

A GPU run may validate on part of the dev set (what fits the trip to the GPU); this evaluates the chosen weights on
every image afterwards and rewrites the card's `evaluation` (the numbers of the run itself are kept under
`evaluation.during_training`). Held-out numbers are given when the run chose its weights on the first images of
this same folder (checked by the hash of their file names). The card records the data by name, content hash and
count, and no path of this machine.

    python -m trainer finalise runs/gpu-default/model.safetensors \\
        --to assets/models/lite0-default/lite0-default.safetensors --grid assets/models/lite0-default/grid.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from engine.modelfiles.modelfile import load_model, save_model
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.masker import Masker
from engine.paths import data_root
from trainer.cli import (
    PICTURE,
    Parser,
    argument_checks,
    device_for,
    existing_folder,
    image_suffixes,
    model_card,
    output_file,
    run_command,
)
from trainer.data.boxes import EvalDataset
from trainer.data.provenance import data_name, portable
from trainer.training.validation import evaluation_command, held_out, open_validation, selection_fingerprint, validate

PROG = "python -m trainer finalise"
REBUILT = {"format", "masker", "blackbox", "input", "classes", "weights_sha256"}  # save_model writes these anew
KEPT_FROM_TRAINING = (
    "data",
    "images",
    "loc_error_paper",
    "loc_error_mean",
    "saliency_metric",
    "mean_mask",
    "mask_fake",
)


def reevaluate(
    masker: Masker, blackbox: BlackBox, card: dict[str, Any], dataset: EvalDataset, data: str, device: torch.device
) -> dict[str, Any]:
    """The card's new `evaluation`: every image of `dataset` (the folder `data`), held-out numbers where they exist."""
    result = validate(masker, blackbox, dataset, None, device)
    evaluation: dict[str, Any] = {"data": dataset.identity(), "classes": "ground truth", **result}
    previous = card.get("evaluation") or {}
    chosen_on = previous.get("selection_images")
    if chosen_on and selection_fingerprint(dataset, chosen_on["images"]) == chosen_on:
        selection = validate(masker, blackbox, dataset, chosen_on["images"], device)
        evaluation.update(
            selection=previous.get("selection"), selection_images=chosen_on, held_out=held_out(result, selection)
        )
    elif chosen_on:
        evaluation["selection"] = (
            f"weights chosen by validation on {chosen_on['images']} images of "
            f"{data_name(previous.get('data')) if previous.get('data') else 'another set'}, not the first "
            f"{chosen_on['images']} of {dataset.identity()['name']}: no held-out split can be given"
        )
    evaluation["during_training"] = {key: previous[key] for key in KEPT_FROM_TRAINING if key in previous}
    evaluation["command"] = evaluation_command(data)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: _run(_parser().parse_args(argv)))


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the trained model file (a run's model.safetensors)")
    parser.add_argument(
        "--to", type=Path, required=True, help="where to write it, NAME.safetensors (its NAME.card.json goes beside it)"
    )
    parser.add_argument(
        "--evaluate",
        default=str(data_root() / "imagenet-val-dev"),
        help="boxes.csv folder to evaluate on ('none' keeps the card's evaluation); default: the dev set",
    )
    parser.add_argument("--grid", type=Path, help="also write the input | mask | preserved | destroyed picture here")
    parser.add_argument("--device", default="auto", help="auto (cuda when torch sees a GPU, the default), cpu, cuda:N")
    return parser


def _run(args: argparse.Namespace) -> int:
    # every argument checked before the model or an image is loaded
    card = model_card("", args.model)
    target = output_file("--to", args.to, (".safetensors",))
    data = args.evaluate if args.evaluate != "none" else str(data_root() / "imagenet-val-dev")
    dataset = None
    if args.evaluate != "none" or args.grid:
        existing_folder("--evaluate", data)
        with argument_checks("--evaluate"):
            dataset = open_validation(data)
    grid = output_file("--grid", args.grid, image_suffixes(), PICTURE) if args.grid else None
    device = device_for("--device", args.device)

    blackbox = create_blackbox(card["blackbox"]["name"]).to(device)
    masker, card = load_model(args.model, blackbox)
    masker.to(device)
    sections = {key: value for key, value in card.items() if key not in REBUILT}
    if args.evaluate != "none":
        assert dataset is not None
        sections["evaluation"] = reevaluate(masker, blackbox, card, dataset, data, device)
    path = save_model(target, masker.cpu(), blackbox.cpu(), **portable(sections))
    if grid is not None:
        from trainer.evaluation.grid import save_grid

        assert dataset is not None
        save_grid(grid, masker, blackbox, dataset, torch.device("cpu"))
    evaluation = sections.get("evaluation", {})
    print(f"wrote {path}")
    if "loc_error_paper" in evaluation:
        print(
            f"{evaluation['images']} images: localisation error {evaluation['loc_error_paper']:.1f}% (paper), "
            f"{evaluation['loc_error_mean']:.1f}% (mean protocol); "
            f"saliency metric {evaluation['saliency_metric']:.3f}; "
            f"mean mask true class {evaluation['mean_mask']:.3f}, wrong class {evaluation['mask_fake']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
