"""Ship a trained model: copy it under its final name, re-evaluated on a whole boxes set, with a fresh grid.

A GPU run may validate on part of the dev set (what fits the trip to the GPU); this evaluates the chosen weights on
every image afterwards and rewrites the card's `evaluation` (the numbers of the run itself are kept under
`evaluation.during_training`). Held-out numbers are given when the run chose its weights on the first images of
this same folder (checked by the hash of their file names).

    python -m trainer.finalise runs/gpu-default/model.safetensors \\
        --to assets/models/lite0-default/lite0-default.safetensors --grid assets/models/lite0-default/grid.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from engine.errors import SaliencyError
from engine.modelfile import load_model, read_card, save_model
from engine.models.blackbox import create_blackbox
from engine.paths import data_root
from trainer.validation import (
    evaluation_command,
    held_out,
    open_validation,
    selection_fingerprint,
    validate,
)

REBUILT = {"format", "masker", "blackbox", "input", "classes", "weights_sha256"}  # save_model writes these anew


def reevaluate(masker, blackbox, card: dict, data: str, device: torch.device) -> dict:  # type: ignore[no-untyped-def]
    dataset = open_validation(data)
    result = validate(masker, blackbox, dataset, None, device)
    evaluation = {"data": data, "classes": "ground truth", **result}
    previous = card.get("evaluation") or {}
    chosen_on = previous.get("selection_images")
    if chosen_on and selection_fingerprint(dataset, chosen_on["images"]) == chosen_on:
        selection = validate(masker, blackbox, dataset, chosen_on["images"], device)
        evaluation.update(
            selection=previous.get("selection"), selection_images=chosen_on, held_out=held_out(result, selection)
        )
    elif chosen_on:
        evaluation["selection"] = (
            f"weights chosen by validation on {chosen_on['images']} images of {previous.get('data', 'another set')}, "
            f"not the first {chosen_on['images']} of {data}: no held-out split can be given"
        )
    keep = ("data", "images", "loc_error_paper", "loc_error_mean", "saliency_metric", "mean_mask", "mask_fake")
    evaluation["during_training"] = {key: previous[key] for key in keep if key in previous}
    evaluation["command"] = evaluation_command(data)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.finalise", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="the trained model file (a run's model.safetensors)")
    parser.add_argument("--to", required=True, help="where to write it (its .card.json goes beside it)")
    parser.add_argument(
        "--evaluate",
        default=str(data_root() / "imagenet-val-dev"),
        help="boxes.csv folder to evaluate on ('none' keeps the card's evaluation); default: the dev set",
    )
    parser.add_argument("--grid", help="also write the input | mask | preserved | destroyed picture here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        blackbox = create_blackbox(read_card(args.model)["blackbox"]["name"]).to(device)
        masker, card = load_model(args.model, blackbox)
        masker.to(device)
        sections = {key: value for key, value in card.items() if key not in REBUILT}
        if args.evaluate != "none":
            sections["evaluation"] = reevaluate(masker, blackbox, card, args.evaluate, device)
        path = save_model(args.to, masker.cpu(), blackbox.cpu(), **sections)
        if args.grid:
            from trainer.grid import save_grid

            data = args.evaluate if args.evaluate != "none" else str(data_root() / "imagenet-val-dev")
            save_grid(Path(args.grid), masker, blackbox, open_validation(data), torch.device("cpu"))
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
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
