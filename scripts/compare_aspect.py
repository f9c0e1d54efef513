"""Pad or stretch? The black box's numbers on clips that are not square, the aspect ratio kept or squashed.

    python scripts/compare_aspect.py CLIP [CLIP ...] [--frames 100] [--model PATH] [--backend auto] [--target auto]
    python scripts/compare_aspect.py --labelled DIR [--images 300] [--wide 1.78]

For each clip, `--frames` frames spread evenly over it are explained twice with the target `--target` (default
"auto": the black box's top class on what it sees): stretched to the model's square input, and padded to a square
first (engine.runtime.framing). Printed per clip and choice: the mean probability of the target on the frame, on the
preserved view Phi(X, M) and on the destroyed view Phi(X, 1 - M), the mean mask area, on how many frames the two
choices picked the same class, and the class chosen most often. A higher frame and preserved probability means the
black box recognises more, and the mask keeps it.

With `--labelled DIR` (a folder of photos with a labels.csv of `file,label`, e.g. the shared imagenet-train), the
target is each photo's true class instead, and each photo is first cut to a `--wide` aspect ratio (width / height,
centred; 1.78: a 16:9 phone frame): whether the black box still sees the right class, with or without squashing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.api import ASPECTS, Explainer
from engine.errors import SaliencyError
from engine.video.reader import VideoReader


def sampled_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip (every k-th, decoded in order: exact on any file)."""
    with VideoReader(path) as reader:
        every = max((reader.frame_count or count) // count, 1)
        frames = []
        for index, frame in enumerate(reader):
            if index % every == 0:
                frames.append(frame)
            if len(frames) == count:
                break
    return frames


def measure(explainer: Explainer, frames: list[np.ndarray], aspect: str, target: str) -> dict[str, np.ndarray]:
    rows = []
    for frame in frames:
        explanation = explainer.explain(frame, target, aspect=aspect, evidence=True)
        probabilities = explanation.probabilities or {}
        rows.append(
            (
                explanation.target,
                probabilities["frame"],
                probabilities["preserved"],
                probabilities["destroyed"],
                float(explanation.mask.mean()),
            )
        )
    table = np.array(rows, dtype=np.float64)
    names = ("target", "frame", "preserved", "destroyed", "area")
    return {name: table[:, column] for column, name in enumerate(names)}


def labelled_photos(folder: Path, count: int, wide: float) -> tuple[list[np.ndarray], list[int]]:
    """`count` photos spread evenly over the folder's labels.csv, each cut (centred) to width / height = `wide`."""
    import csv

    import cv2

    with (folder / "labels.csv").open(newline="") as table:
        rows = list(csv.DictReader(table))
    rows = rows[:: max(len(rows) // count, 1)][:count]
    photos, labels = [], []
    for row in rows:
        image = cv2.cvtColor(cv2.imread(str(folder / row["file"])), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        if width / height < wide:  # too tall: keep the full width, fewer rows
            keep = round(width / wide)
            image = image[(height - keep) // 2 : (height - keep) // 2 + keep]
        else:
            keep = round(height * wide)
            image = image[:, (width - keep) // 2 : (width - keep) // 2 + keep]
        photos.append(np.ascontiguousarray(image))
        labels.append(int(row["label"]))
    return photos, labels


def measure_labelled(
    explainer: Explainer, photos: list[np.ndarray], labels: list[int], aspect: str
) -> dict[str, float]:
    rows = []
    for photo, label in zip(photos, labels):
        explanation = explainer.explain(photo, label, aspect=aspect, evidence=True)
        probabilities = explanation.probabilities or {}
        rows.append(
            (
                probabilities["frame"],
                probabilities["preserved"],
                probabilities["destroyed"],
                float(explanation.top5[0][0] == label),
            )
        )
    table = np.array(rows, dtype=np.float64).mean(axis=0)
    return dict(zip(("frame", "preserved", "destroyed", "top1"), table.tolist()))


def most_frequent(explainer: Explainer, targets: np.ndarray) -> str:
    classes, counts = np.unique(targets.astype(int), return_counts=True)
    best = int(counts.argmax())
    return f"{explainer.classes[int(classes[best])].display_name} ({counts[best]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--labelled", type=Path, default=None, help="photos with a labels.csv (file,label)")
    parser.add_argument("--images", type=int, default=300, help="photos taken from --labelled")
    parser.add_argument("--wide", type=float, default=16 / 9, help="width / height the photos are cut to")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--model", default=None, help="a masking model file (default: the bundled model)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--target", default="auto", help="the class explained: auto (top-1 per frame) or a class")
    args = parser.parse_args(argv)
    try:
        with Explainer(args.model, args.backend) as explainer:
            print(f"model {explainer.model_description} on {explainer.backend_name}")
            if args.labelled is not None:
                photos, labels = labelled_photos(args.labelled, args.images, args.wide)
                print(f"{len(photos)} photos of {args.labelled} cut to {args.wide:.2f}:1, target: the true class")
                print(f"{'aspect':<8} {'frame p':>8} {'preserved':>9} {'destroyed':>9} {'top-1 right':>11}")
                for aspect in ASPECTS:
                    numbers = measure_labelled(explainer, photos, labels, aspect)
                    print(
                        f"{aspect:<8} {numbers['frame']:>8.3f} {numbers['preserved']:>9.3f} "
                        f"{numbers['destroyed']:>9.3f} {numbers['top1']:>11.1%}"
                    )
            if not args.clips:
                return 0
            print(
                f"{'clip':<16} {'size':>9} {'aspect':<8} {'frames':>6} {'frame p':>8} {'preserved':>9} "
                f"{'destroyed':>9} {'area':>6} {'same class':>10}  most frequent class"
            )
            for clip in args.clips:
                frames = sampled_frames(clip, args.frames)
                height, width = frames[0].shape[:2]
                results = {aspect: measure(explainer, frames, aspect, args.target) for aspect in ASPECTS}
                same = int(np.sum(results["pad"]["target"] == results["stretch"]["target"]))
                for aspect, numbers in results.items():
                    print(
                        f"{clip.name:<16} {f'{width}x{height}':>9} {aspect:<8} {len(frames):>6} "
                        f"{numbers['frame'].mean():>8.3f} {numbers['preserved'].mean():>9.3f} "
                        f"{numbers['destroyed'].mean():>9.3f} {numbers['area'].mean():>6.3f} "
                        f"{f'{same}/{len(frames)}':>10}  {most_frequent(explainer, numbers['target'])}"
                    )
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
