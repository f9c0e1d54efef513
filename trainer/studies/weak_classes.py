"""Masks for classes the black box does not see: `python -m trainer weak-classes`.

A masking model should answer an empty mask for a class the black box gives almost nothing (the paper's fake labels
train exactly that). This measures it where it matters, on dev images and on frames of real videos: for every
image or frame, classes with black-box probability below `WEAK_PROBABILITY` (1%) of three kinds
- "tail": the `tail` least probable of the black box's top-100 (ranks 91..100 by default): classes the black box
  ranks among its likely ones, yet gives < 1% (the hard case: the street scene's "minivan");
- "random": classes drawn uniformly among those below 1% (seeded);
- "other": the top-1 class of a different image or frame (what the app explains after the scene changed),
and the mask the model answers for each: its mean (area), its largest blob above 0.5 (8-connected, as a fraction of
the image) and the masker's own class-presence score (max sigmoid of the feature filter's logits). A case passes
when the mean is at most `AREA_GOAL` and no pixel is above 0.5.

Optionally a gate: the mask is zeroed where the black box gives the target less than `--gate` on the image (the rule
the app can apply, since its saliency graph computes the black box's logits anyway). The gate's price is measured
on the true classes: the images whose ground-truth class falls under the gate lose their mask.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.api import load_masker
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from engine.paths import data_root, default_model_path
from engine.video.reader import VideoReader
from trainer.cli import (
    COUNT,
    COUNT_OR_ZERO,
    PROBABILITY,
    Parser,
    UsageError,
    argument_checks,
    device_for,
    model_card,
    number,
    output_folder,
    run_command,
)
from trainer.data.boxes import open_dataset
from trainer.evaluation.metrics import PAPER_THRESHOLD

PROG = "python -m trainer weak-classes"
WEAK_PROBABILITY = 0.01
AREA_GOAL = 0.02
TOP = 100
KINDS = ("tail", "random", "other")
CASE_FIELDS = (
    "source",
    "item",
    "kind",
    "target",
    "probability",
    "rank",
    "mask_mean",
    "mask_max",
    "largest_blob",
    "presence",
    "passes",
)


@dataclass
class Frame:
    """One image to explain: where it comes from and its pixels (uint8 (S, S, 3) RGB at the masker's input size)."""

    source: str
    item: str
    image: np.ndarray


@dataclass
class Case:
    source: str
    item: str
    kind: str
    target: int
    probability: float
    rank: int  # the target's rank in the black box's answer (1 = top)
    mask_mean: float
    mask_max: float
    largest_blob: float
    presence: float
    passes: int


# --- which frames and classes ---------------------------------------------------------------------------------------


def dev_frames(folder: Path, size: int, limit: int | None = None) -> list[Frame]:
    """The images of a boxes set (their ground truth unused), resized to the masker's input as the evaluation does."""
    dataset = open_dataset(folder)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    frames = []
    for index in range(count):
        sample = dataset.load(index)
        frames.append(Frame(folder.name, sample.file, _resize(sample.image, size)))
    return frames


def video_frames(path: Path, size: int, every: int) -> list[Frame]:
    """Every `every`-th frame of a video, resized (stretched, INTER_AREA) as the engine feeds the masker."""
    frames = []
    with VideoReader(path) as reader:
        for index, frame in enumerate(reader):
            if index % every == 0:
                frames.append(Frame(path.name, str(index), _resize(frame, size)))
    return frames


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def weak_targets(
    probabilities: torch.Tensor, other_top1: list[int], tail: int, random_count: int, generator: torch.Generator
) -> list[list[tuple[str, int]]]:
    """Per image (rows of `probabilities` (N, K)): [(kind, class)] of classes below WEAK_PROBABILITY.

    tail: the `tail` least probable of the top-100; random: `random_count` drawn uniformly among the classes below
    the bound; other: `other_top1[i]` (the top-1 of a different image) when it is below the bound here."""
    order = probabilities.argsort(dim=1, descending=True)
    targets = []
    for row, (p, ranked) in enumerate(zip(probabilities, order)):
        chosen: list[tuple[str, int]] = []
        chosen += [("tail", int(c)) for c in ranked[TOP - tail : TOP] if p[c] < WEAK_PROBABILITY]
        weak = torch.nonzero(p < WEAK_PROBABILITY)[:, 0]
        picks = torch.randperm(len(weak), generator=generator)[:random_count]
        chosen += [("random", int(weak[i])) for i in picks]
        if p[other_top1[row]] < WEAK_PROBABILITY:
            chosen.append(("other", other_top1[row]))
        targets.append(chosen)
    return targets


# --- measuring ------------------------------------------------------------------------------------------------------


def largest_blob(mask: np.ndarray, threshold: float = PAPER_THRESHOLD) -> float:
    """Area of the largest 8-connected region of `mask` (H, W) above `threshold`, as a fraction of the image."""
    binary = (mask > threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return 0.0
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / mask.size


def passes(mask_mean: float, mask_max: float) -> bool:
    return mask_mean <= AREA_GOAL and mask_max <= PAPER_THRESHOLD


@torch.no_grad()
def measure(
    masker: Masker,
    blackbox: BlackBox,
    sources: list[list[Frame]],
    tail: int,
    random_count: int,
    seed: int,
    device: torch.device,
    batch_size: int = 16,
) -> list[Case]:
    """Every weak (frame, class) case of the frames of `sources` (e.g. one list per video), with its mask's figures.

    "other": with several sources, the top-1 of the frame at the same relative place in the next source (another
    video: the scene changed); with one, the top-1 of the frame half the list away (another photo)."""
    images = [_tensor(frames) for frames in sources]
    probabilities = [_probabilities(blackbox, batch, device) for batch in images]
    top1 = [p.argmax(1).tolist() for p in probabilities]
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for index, frames in enumerate(sources):
        if len(sources) > 1:
            donor = top1[(index + 1) % len(sources)]
            other = [donor[i * len(donor) // len(frames)] for i in range(len(frames))]
        else:
            other = [top1[index][(i + len(frames) // 2) % len(frames)] for i in range(len(frames))]
        targets = weak_targets(probabilities[index], other, tail, random_count, generator)
        cases += _cases(masker, frames, images[index], probabilities[index], targets, device, batch_size)
    return cases


def _tensor(frames: list[Frame]) -> torch.Tensor:
    return torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).float() / 255


def _probabilities(blackbox: BlackBox, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.cat([F.softmax(blackbox(chunk.to(device)).float(), 1).cpu() for chunk in images.split(32)])


def _cases(
    masker: Masker,
    frames: list[Frame],
    images: torch.Tensor,
    probabilities: torch.Tensor,
    targets: list[list[tuple[str, int]]],
    device: torch.device,
    batch_size: int,
) -> list[Case]:
    ranks = probabilities.argsort(1, descending=True).argsort(1) + 1  # (N, K): rank of every class
    pairs = [(index, kind, target) for index, chosen in enumerate(targets) for kind, target in chosen]
    cases = []
    for batch in _chunks(pairs, batch_size):
        indices = torch.tensor([index for index, _, _ in batch])
        classes = torch.tensor([target for _, _, target in batch])
        outputs = masker.forward_aux(images[indices].to(device), classes.to(device))
        masks = outputs["mask"].float()[:, 0].cpu().numpy()
        presence = torch.sigmoid(outputs["presence_logits"].float()).flatten(1).amax(1).cpu().tolist()
        for (index, kind, target), mask, present in zip(batch, masks, presence):
            mean, peak = float(mask.mean()), float(mask.max())
            cases.append(
                Case(
                    frames[index].source,
                    frames[index].item,
                    kind,
                    target,
                    float(probabilities[index, target]),
                    int(ranks[index, target]),
                    mean,
                    peak,
                    largest_blob(mask),
                    float(present),
                    int(passes(mean, peak)),
                )
            )
    return cases


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def summarise_cases(cases: list[Case], gate: float = 0.0) -> dict:
    """Per source and kind, and per source: cases, frames, mean mask, share of cases that pass, worst blob; with a
    gate, `gated_pass_share`: the share that pass when masks are zeroed where the target's probability < gate."""

    def line(selected: list[Case]) -> dict:
        if not selected:
            return {"cases": 0}
        return {
            "cases": len(selected),
            "frames": len({(c.source, c.item) for c in selected}),
            "mean_mask": round(float(np.mean([c.mask_mean for c in selected])), 4),
            "pass_share": round(float(np.mean([c.passes for c in selected])), 4),
            "blob_share": round(float(np.mean([c.mask_max > PAPER_THRESHOLD for c in selected])), 4),
            "mean_blob": round(float(np.mean([c.largest_blob for c in selected])), 4),
            "max_blob": round(float(max(c.largest_blob for c in selected)), 4),
            "frames_all_pass": round(_frames_all_pass(selected), 4),
            **(
                {"gated_pass_share": round(float(np.mean([c.passes or c.probability < gate for c in selected])), 4)}
                if gate > 0
                else {}
            ),
        }

    summary: dict = {}
    for source in dict.fromkeys(c.source for c in cases):
        of_source = [c for c in cases if c.source == source]
        summary[source] = {"all": line(of_source), **{k: line([c for c in of_source if c.kind == k]) for k in KINDS}}
    summary["all"] = line(cases)
    return summary


def _frames_all_pass(cases: list[Case]) -> float:
    """The share of frames on which every weak case passes."""
    frames: dict[tuple[str, str], bool] = {}
    for case in cases:
        key = (case.source, case.item)
        frames[key] = frames.get(key, True) and bool(case.passes)
    return float(np.mean(list(frames.values())))


# --- the command line -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=None, help="masking model file (default: the bundled model)")
    parser.add_argument(
        "--data", type=Path, default=None, help="boxes set of images (default: $SALIENCY_DATA/imagenet-val-dev)"
    )
    parser.add_argument("--skip", type=COUNT_OR_ZERO, default=0, help="leave out the first N dev images (0)")
    parser.add_argument(
        "--limit", type=COUNT_OR_ZERO, default=None, help="the first N dev images after --skip (all; 0: none)"
    )
    parser.add_argument(
        "--videos",
        default="vtest.avi,box.mp4",
        help="comma-separated video files; bare names are looked up in $SALIENCY_DATA/videos ('' for none)",
    )
    parser.add_argument("--frame-every", type=COUNT, default=10, help="every N-th video frame (10)")
    parser.add_argument("--tail", type=number(int, 0, TOP), default=10, help="least probable of the top-100 (10)")
    parser.add_argument("--random", type=COUNT_OR_ZERO, default=5, help="random classes below 1%% per image (5)")
    parser.add_argument("--seed", type=COUNT_OR_ZERO, default=0, help="seed of the random classes (0)")
    parser.add_argument(
        "--gate",
        type=PROBABILITY,
        default=0.0,
        help="also count as passing the cases the black box's gate empties (target probability below this; 0: none)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.add_argument("--out", type=Path, default=Path("runs/weak-classes"), help="output folder")
    return parser


def _video_paths(text: str) -> list[Path]:
    paths = []
    for name in [n.strip() for n in text.split(",") if n.strip()]:
        path = Path(name)
        if not path.exists() and path.parent == Path("."):
            path = data_root() / "videos" / name
        if not path.is_file():
            raise UsageError(f"--videos: {name}: no such video file")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    device = device_for("--device", args.device)
    model_path = args.model if args.model is not None else default_model_path()
    model_card("--model", model_path)
    data = args.data if args.data is not None else data_root() / "imagenet-val-dev"
    videos = _video_paths(args.videos)
    output_folder("--out", args.out)
    with argument_checks("--model"):
        model = load_masker(model_path, device)
    size = model.masker.config.input_size
    cases: list[Case] = []
    if args.limit != 0:
        frames = dev_frames(data, size, None if args.limit is None else args.skip + args.limit)[args.skip :]
        cases += measure(model.masker, model.blackbox, [frames], args.tail, args.random, args.seed, device)
    if videos:
        clips = [video_frames(video, size, args.frame_every) for video in videos]
        cases += measure(model.masker, model.blackbox, clips, args.tail, args.random, args.seed, device)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "cases.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CASE_FIELDS)
        writer.writeheader()
        writer.writerows(asdict(case) for case in cases)
    summary = summarise_cases(cases, args.gate)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    header = f"{'source':<22}{'kind':<8}{'cases':>7}{'frames':>8}{'mean mask':>11}{'pass':>8}{'any>0.5':>9}"
    print(header + f"{'max blob':>10}{'frames ok':>11}")
    for source, lines in summary.items():
        for kind, line in lines.items() if source != "all" else [("all", lines)]:
            if not line.get("cases"):
                continue
            print(
                f"{source:<22}{kind:<8}{line['cases']:>7}{line['frames']:>8}{line['mean_mask']:>11.4f}"
                f"{100 * line['pass_share']:>7.1f}%{100 * line['blob_share']:>8.1f}%{line['max_blob']:>10.3f}"
                f"{100 * line['frames_all_pass']:>10.1f}%"
            )
