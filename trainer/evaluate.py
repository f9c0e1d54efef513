"""Evaluation: localisation error (two protocols), saliency metric and speed, for the masking model and baselines.

Library: `evaluate_masker(masker, blackbox, dataset)` (cheap, the masking model alone; the trainer calls it for
validation). CLI: `python -m trainer evaluate --help`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from engine.api import load_masker
from engine.errors import BackendUnavailableError, ModelFileError, SaliencyError
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.encoders import create_encoder
from engine.models.masker import Masker, MaskerConfig
from engine.paths import DEFAULT_MODEL, data_root, default_model_path
from trainer.baselines import DEFAULT_METHODS, METHODS, MaskingModel, MethodContext, create_method
from trainer.boxes import EvalDataset, Sample, open_dataset
from trainer.report import RowWriter, contact_sheet, format_table, read_rows, write_summary
from trainer.scoring import blackbox_correct, image_batch, iter_batches, run_method, score, summarise


def evaluate_masker(
    masker: nn.Module,
    blackbox: BlackBox,
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


# --- the command line ---------------------------------------------------------------------------------------------

NORMALISATION_NOTE = "maps not in [0, 1] ({}) are rescaled per image to [0, 1] (min-max) before thresholding"
PROTOCOLS = {
    "loc_error_paper": "threshold 0.5, tightest box around all pixels above; hit: IoU > 0.5 with any GT box; "
    "an empty mask is a miss (Dabkowski & Gal)",
    "loc_error_mean": "threshold at the map's mean, box of the largest 8-connected component (Phang et al.)",
    "saliency_metric": "log(max(a, 0.05)) - log(p) on the paper-protocol box (whole image for an empty mask), crop at "
    "integer pixel bounds resized bicubic to the black box input, clamped to 0..255; GT boxes: mean over an "
    "image's boxes",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer evaluate",
        description="Weakly supervised localisation error (two protocols), saliency metric and speed of the masking "
        "model and of baselines, on the same images and black box, in one table.",
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
        help="evaluate an untrained masker (random decoder, seed 0) as the model row, labelled so",
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
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    parser.add_argument("--iterations", type=int, default=300, help="iterations of the iterative baseline (300)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch for every method (8)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate"), help="output folder (runs/evaluate)")
    parser.add_argument("--sheet", type=int, default=8, help="images on the contact sheet (8; 0: none)")
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
the training objective; by far the slowest), model (the masking model: one forward pass).
Gradient and Grad-CAM maps are rescaled per image to [0, 1] (min-max) before thresholding.

columns: LE paper = localisation error, threshold 0.5, tightest box around everything above (an empty mask is a
miss); LE mean = threshold at the map's mean, box of the largest connected component (Phang et al.); hit = IoU > 0.5
with any ground-truth box, the ground-truth class as target. saliency = log(max(a, 0.05)) - log(p) on the paper
box (lower is better). ms/image = the method's own time, batch time / batch size, first batch left out.

outputs (in --out): per_image.csv (one row per image and method, appended as the run goes), summary.csv,
summary.json (the table, how it was computed, the images that could not be used), contact_sheet.png.

the real ImageNet validation set: either a folder of images with a boxes.csv in the dev set's format
(file,label,orig_width,orig_height,x0,y0,x1,y1; boxes in pixels of the stored image), or
  python -m trainer evaluate --data ILSVRC2012_img_val --annotations ILSVRC2012_bbox_val
with the standard bounding-box XML files (one per image, boxes in original pixels, the class as a wnid).
Images are stretched to 227 x 227 (the dev set's size) and their boxes with them.
"""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (SaliencyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    names = _method_names(args.methods)
    device = _device(args.device)
    data = args.data if args.data is not None else data_root() / "imagenet-val-dev"
    dataset = open_dataset(data, annotations=args.annotations)
    blackbox, masker, masker_label, names = _models(args, names, device)
    context = MethodContext(blackbox, device, masker, masker_label, args.iterations)
    methods = [create_method(name, context) for name in names]

    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "per_image.csv"
    previous = read_rows(rows_path) if args.resume else []
    done = {(row["file"], row["method"]) for row in previous}
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    todo = [i for i in range(count) if any((dataset.records[i].file, n) not in done for n in names)]

    errors: list[str] = []
    sheet: list[dict] = []
    interrupted = False
    writer = RowWriter(rows_path, resume=args.resume)
    progress = tqdm(total=len(todo), unit="image", desc="evaluate")
    try:
        for samples in iter_batches(dataset, todo, args.batch_size, errors):
            warmup = progress.n == 0
            _evaluate_batch(samples, methods, blackbox, device, done, writer, sheet, args.sheet, warmup)
            progress.update(len(samples))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        writer.close()

    lines = _summary_lines(read_rows(rows_path), methods)
    meta = _meta(args, data, blackbox, device, names, methods, errors, read_rows(rows_path), interrupted)
    _print_report(lines, meta, errors)
    csv_path, json_path = write_summary(args.out, lines, meta)
    written = [rows_path, csv_path, json_path]
    if sheet:
        written.append(contact_sheet(sheet, [m.label for m in methods], args.out / "contact_sheet.png"))
    print("written: " + ", ".join(str(p) for p in written))
    return 130 if interrupted else 0


def _evaluate_batch(
    samples: list[Sample],
    methods: list,
    blackbox: BlackBox,
    device: torch.device,
    done: set[tuple[str, str]],
    writer: RowWriter,
    sheet: list[dict],
    sheet_size: int,
    warmup: bool,
) -> None:
    images = image_batch(samples, blackbox.input_size, device)
    classes = torch.tensor([s.label for s in samples], device=device)
    correct = blackbox_correct(blackbox, images, classes)
    outputs = []
    for method in methods:
        output = run_method(method, samples, images, classes)
        rows = score(method, output, samples, blackbox, correct, device, warmup)
        writer.write([row for row in rows if (row["file"], row["method"]) not in done])
        outputs.append(output)
    for index, sample in enumerate(samples[: max(sheet_size - len(sheet), 0)]):
        sheet.append(
            {
                "image": sample.image,
                "gt": sample.boxes,
                "methods": [(o.maps[index], o.paper_boxes[index], o.mean_boxes[index]) for o in outputs],
            }
        )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("--device cuda: no CUDA device here; use --device cpu")
    return device


def _method_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise ValueError(f"unknown method(s) {unknown or text!r}; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def _models(
    args: argparse.Namespace, names: list[str], device: torch.device
) -> tuple[BlackBox, nn.Module | None, str, list[str]]:
    """(black box, masker or None, the model row's label, the method names) for the options given."""
    if "model" not in names:
        return create_blackbox(args.blackbox).to(device), None, "", names
    if args.untrained:
        blackbox = create_blackbox(args.blackbox)
        torch.manual_seed(0)
        masker = Masker(MaskerConfig(), create_encoder("efficientnet_lite0", blackbox))
        return blackbox.to(device), masker.to(device).eval(), "Masking model (UNTRAINED, random decoder)", names
    path = args.model if args.model is not None else default_model_path()
    if not path.exists():
        message = (
            f"the masking model {path} does not exist yet (train one with `python -m trainer train`, "
            f"pass --model PATH, or --untrained for an untrained masker)"
        )
        if args.model is not None or args.methods != ",".join(DEFAULT_METHODS):
            raise ModelFileError(message)
        print(f"note: {message}; the model row is left out", file=sys.stderr)
        return create_blackbox(args.blackbox).to(device), None, "", [n for n in names if n != "model"]
    model = load_masker(path, device)
    return model.blackbox, model.masker, f"Masking model ({path.name})", names


def _summary_lines(rows: list[dict], methods: list) -> list[dict]:
    lines = []
    for method in methods:
        method_rows = [row for row in rows if row["method"] == method.name]
        if method_rows:
            normalised = bool(getattr(method, "normalised", False))
            lines.append(
                {"method": method.name, "label": method.label, **summarise(method_rows), "normalised": normalised}
            )
    return lines


def _meta(
    args: argparse.Namespace,
    data: Path,
    blackbox: BlackBox,
    device: torch.device,
    names: list[str],
    methods: list,
    errors: list[str],
    rows: list[dict],
    interrupted: bool,
) -> dict:
    """How the table was computed: data, black box, device, protocols, problems with the data."""
    normalised = [m.label for m in methods if getattr(m, "normalised", False)]
    first = [row for row in rows if row["method"] == names[0]]
    return {
        "command": "python -m trainer evaluate " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["evaluate"] else []),
        "data": str(data),
        "annotations": str(args.annotations) if args.annotations else None,
        "images": len(first),
        "blackbox": getattr(blackbox, "name", type(blackbox).__name__),
        "blackbox_top1": summarise(first)["blackbox_top1"] if first else None,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "batch_size": args.batch_size,
        "iterations": args.iterations if "iterative" in names else None,
        "normalisation": NORMALISATION_NOTE.format(", ".join(normalised)) if normalised else None,
        "protocols": PROTOCOLS,
        "ms_per_image": "time of the method's own computation (maps or boxes) per image, batch time / batch size, "
        "on the device above, this run; each method's first batch (start-up costs) left out",
        "errors": errors,
        "interrupted": interrupted,
    }


def _print_report(lines: list[dict], meta: dict, errors: list[str]) -> None:
    print()
    if lines:
        print(format_table(lines))
    print(
        f"\n{meta['images']} images from {meta['data']}; black box {meta['blackbox']} "
        f"(top-1 {meta['blackbox_top1'] or float('nan'):.1f}% on them); {meta['device']}, batch {meta['batch_size']}"
    )
    if meta["normalisation"]:
        print(f"note: {meta['normalisation']}")
    if errors:
        print(f"{len(errors)} problem(s) with the data (images left out or boxes dropped; all in summary.json):")
        for error in errors[:10]:
            print(f"  {error}")
    if meta["interrupted"]:
        print("interrupted: the table covers the images done so far; rerun with --resume to finish")
