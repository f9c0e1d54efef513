"""A picture of what a masking model does: input | mask | preserved | destroyed, for a few boxes-set images.

On the input: the ground-truth boxes (green) and the paper-protocol box of the mask (red). Under preserved and
destroyed: the black box's probability of the class on them (the blur alternative, as in the app).

    python -m trainer grid --model assets/models/lite0-default/lite0-default.safetensors --out grid.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from trainer.cli import (
    COUNT,
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
from trainer.data.boxes import EvalDataset, open_dataset
from trainer.evidence import blur, remove_evidence

PANEL = 160
CAPTION = 14


@torch.no_grad()
def save_grid(
    path: Path,
    masker: Masker,
    blackbox: BlackBox,
    dataset: EvalDataset,
    device: torch.device,
    count: int = 16,
    images_per_row: int = 2,
) -> Path:
    """The first `count` images of a boxes set, explained for their ground-truth class, as one PNG."""
    from trainer.evaluation.metrics import box_paper
    from trainer.evaluation.scoring import image_batch

    samples = [dataset.load(index) for index in range(min(count, len(dataset)))]
    height, width = samples[0].image.shape[:2]
    images = image_batch(samples, blackbox.input_size, device)  # as the evaluation sees them
    labels = torch.tensor([sample.label for sample in samples], device=device)
    masker.eval()
    masks = masker(images, labels).float()  # (N, 1, S, S)
    alternative = blur(images)
    preserved = remove_evidence(images, masks, alternative)
    destroyed = remove_evidence(images, 1 - masks, alternative)
    p_preserved = _probabilities(blackbox, preserved, labels)
    p_destroyed = _probabilities(blackbox, destroyed, labels)
    at_image_size = F.interpolate(masks, size=(height, width), mode="bilinear", align_corners=False)[:, 0].cpu().numpy()

    rows = (len(samples) + images_per_row - 1) // images_per_row
    sheet = Image.new("RGB", (images_per_row * 4 * PANEL, rows * (PANEL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, sample in enumerate(samples):
        left = (index % images_per_row) * 4 * PANEL
        top = (index // images_per_row) * (PANEL + CAPTION)
        mask = at_image_size[index]
        panels = [
            _with_boxes(sample.image, sample.boxes, box_paper(mask)),
            _to_pil(np.repeat(mask[..., None], 3, axis=2)),
            _to_pil(preserved[index].permute(1, 2, 0).cpu().numpy()),
            _to_pil(destroyed[index].permute(1, 2, 0).cpu().numpy()),
        ]
        for column, panel in enumerate(panels):
            sheet.paste(panel.resize((PANEL, PANEL), Image.Resampling.BILINEAR), (left + column * PANEL, top))
        name = blackbox.classes[sample.label].display_name[:22]
        caption = f"{name}  mask {mask.mean():.2f}   p {p_preserved[index]:.2f}        p {p_destroyed[index]:.2f}"
        draw.text((left + 3, top + PANEL), caption, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _probabilities(blackbox: BlackBox, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    probabilities = torch.softmax(blackbox(images).float(), dim=1)
    return probabilities.gather(1, labels[:, None])[:, 0].tolist()


def _to_pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8))


def _with_boxes(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray | None) -> Image.Image:
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for box in truth:
        draw.rectangle([float(v) for v in box], outline=(0, 220, 0), width=2)
    if predicted is not None:
        draw.rectangle([float(v) for v in predicted], outline=(230, 0, 0), width=2)
    return picture


PROG = "python -m trainer grid"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: _run(_parser().parse_args(argv)))


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model file (default: the bundled model)")
    parser.add_argument("--data", type=Path, help="folder with boxes.csv (default: $SALIENCY_DATA/imagenet-val-dev)")
    parser.add_argument("--count", type=COUNT, default=16, help="images: the first N of the folder (16; >= 1)")
    parser.add_argument(
        "--out", type=Path, default=Path("grid.png"), help="picture to write: .png, .jpg, ... (grid.png)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (the default), auto, cuda or cuda:N")
    return parser


def _run(args: argparse.Namespace) -> int:
    from engine.api import load_masker
    from engine.paths import data_root, default_model_path

    # every argument checked before the model or an image is loaded
    model = args.model if args.model is not None else default_model_path()
    model_card("--model", model)
    data = existing_folder("--data", args.data if args.data is not None else data_root() / "imagenet-val-dev")
    with argument_checks("--data"):
        dataset = open_dataset(data)
    out = output_file("--out", args.out, image_suffixes(), PICTURE)
    device = device_for("--device", args.device)

    loaded = load_masker(model, device)
    path = save_grid(out, loaded.masker, loaded.blackbox, dataset, device, args.count)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
