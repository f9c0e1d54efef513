"""Training and validation data, decoded once into memory and augmented on the training device.

Training sources (`find_source` decides which):
- a folder with `labels.csv` (`file,label[,wnid,...]`, as ../shared/data/imagenet-train);
- a torchvision ImageFolder layout: one sub-folder per class, named by wnid, class index or class name;
- an unlabelled folder of images, or a video file: the targets are the black box's own top-1 predictions
  (pseudo-labels), so the masking model explains what the classifier sees.

Every training image is decoded once (short side at most `short_side` pixels) and kept as uint8. `BatchAugmenter` cuts a
batch of random resized crops (+ flips) out of them on the device with one `roi_align` call, so a training step
never waits for the CPU. Unreadable images are skipped with a warning and counted; everything else that is wrong
(no images, a label naming a missing file, a class the black box does not have) is a DataError.
"""

from __future__ import annotations

import csv
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.ops import roi_align
from tqdm import tqdm

from engine.classes import ClassInfo, resolve_class
from engine.errors import DataError, UnknownClassError
from engine.models.blackbox import BlackBox
from trainer.data.provenance import data_identity, relative_files

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass
class TrainingSet:
    """Decoded images (uint8 (3, H, W) each) with their target classes."""

    images: list[torch.Tensor]
    labels: torch.Tensor  # (N,) int64
    description: dict = field(default_factory=dict)  # for the model card: name, content hash, kind, counts


# --- finding the images ---------------------------------------------------------------------------------------


def find_source(path: Path, classes: tuple[ClassInfo, ...]) -> tuple[str, list[tuple[Path, int | None]]]:
    """(kind, [(image path, label or None)]) for a data path; kind: labels.csv, imagefolder, unlabelled, video."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"the training data {path} does not exist; pass --data FOLDER (or set SALIENCY_DATA)")
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video", [(path, None)]
        raise DataError(f"{path} is a file but not a video ({', '.join(sorted(VIDEO_SUFFIXES))}); pass a folder")
    try:
        entries = sorted(path.iterdir())
    except OSError as error:
        raise DataError(f"cannot read the data folder {path}: {error}") from error
    if (path / "labels.csv").exists():
        return "labels.csv", _read_labels_csv(path, classes)
    class_dirs = [entry for entry in entries if entry.is_dir() and _images_in(entry)]
    if class_dirs:
        return "imagefolder", _read_image_folder(class_dirs, classes)
    images = [entry for entry in entries if entry.suffix.lower() in IMAGE_SUFFIXES]
    if images:
        return "unlabelled", [(image, None) for image in images]
    raise DataError(
        f"no images in {path}: expected labels.csv, one sub-folder of images per class, image files, or a video"
    )


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_labels_csv(folder: Path, classes: tuple[ClassInfo, ...]) -> list[tuple[Path, int | None]]:
    labels_file = folder / "labels.csv"
    with open(labels_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DataError(f"{labels_file} lists no images")
    if not {"file", "label"} <= set(rows[0]):
        raise DataError(f"{labels_file} needs the columns file,label (it has {','.join(rows[0])})")
    records: list[tuple[Path, int | None]] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        label = _class_index(row["label"], classes, f"{labels_file}:{line}")
        if row.get("wnid") and classes[label].wnid.startswith("n") and row["wnid"] != classes[label].wnid:
            raise DataError(
                f"{labels_file}:{line}: label {label} is {classes[label].wnid} ({classes[label].display_name}) for "
                f"the black box, but the file says {row['wnid']}: the labels use another class order"
            )
        image = folder / row["file"]
        if not image.is_file():
            missing.append(row["file"])
        records.append((image, label))
    if missing:
        raise DataError(
            f"{labels_file} names {len(missing)} image(s) that are not in {folder}: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    return records


def _read_image_folder(class_dirs: list[Path], classes: tuple[ClassInfo, ...]) -> list[tuple[Path, int | None]]:
    records: list[tuple[Path, int | None]] = []
    for class_dir in class_dirs:
        label = _class_index(class_dir.name, classes, f"folder {class_dir}")
        records += [(image, label) for image in _images_in(class_dir)]
    return records


def _class_index(value: str, classes: tuple[ClassInfo, ...], where: str) -> int:
    try:
        return resolve_class(value.strip(), classes)
    except UnknownClassError as error:
        raise DataError(f"{where}: {error} (the black box has {len(classes)} classes)") from error


SOURCE_FILES = {
    "labels.csv": "labels.csv and every image it lists",
    "imagefolder": "every image (their names include the class folders)",
    "unlabelled": "every image",
    "video": "the video",
}


def source_files(path: Path, kind: str, records: list[tuple[Path, int | None]]) -> list[tuple[str, Path]]:
    """The files a training source is read from, named relative to its folder: what its content hash covers."""
    if kind == "video":
        return [(path.name, path)]
    files = [image for image, _ in records] + ([path / "labels.csv"] if kind == "labels.csv" else [])
    return relative_files(path, files)


# --- decoding -------------------------------------------------------------------------------------------------


def decode_image(path: Path, short_side: int | None = None) -> torch.Tensor:
    """uint8 (3, H, W) RGB, scaled down (never up) so that its short side is at most `short_side`."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")  # decodes now: a truncated file fails here, not later
    if short_side is not None and min(image.size) > short_side:
        scale = short_side / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    return (
        torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        .view(image.height, image.width, 3)
        .permute(2, 0, 1)
        .contiguous()
    )


def decode_all(
    paths: list[Path], short_side: int | None, workers: int = 4, progress: bool = True
) -> tuple[list[torch.Tensor | None], list[str]]:
    """Decode in threads (PIL releases the GIL); unreadable files come back as None with a reason."""

    def attempt(path: Path) -> tuple[torch.Tensor | None, str]:
        try:
            return decode_image(path, short_side), ""
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
            return None, f"{path.name} ({error})"

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(
            tqdm(
                pool.map(attempt, paths),
                total=len(paths),
                desc="decoding",
                disable=not progress,
                unit="img",
                leave=False,
            )
        )
    images = [image for image, _ in results]
    problems = [reason for image, reason in results if image is None]
    return images, problems


def read_video(
    path: Path, every: int = 5, short_side: int | None = 256, limit: int | None = None
) -> list[torch.Tensor]:
    """Every `every`-th frame of a video as uint8 (3, H, W) RGB."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"cannot open the video {path}")
    frames: list[torch.Tensor] = []
    index = 0
    try:
        while limit is None or len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                height, width = frame.shape[:2]
                if short_side is not None and min(height, width) > short_side:
                    scale = short_side / min(height, width)
                    frame = cv2.resize(
                        frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
                    )
                frames.append(torch.from_numpy(frame).permute(2, 0, 1).contiguous())
            index += 1
    finally:
        capture.release()
    if not frames:
        raise DataError(f"the video {path} has no readable frames")
    return frames


@torch.no_grad()
def pseudo_labels(
    images: list[torch.Tensor], blackbox: BlackBox, device: torch.device, batch: int = 64
) -> torch.Tensor:
    """The black box's top-1 class for each image (centre square, resized to its input size)."""
    labels = []
    size = blackbox.input_size
    for start in tqdm(range(0, len(images), batch), desc="pseudo-labels", unit="batch", leave=False):
        chunk = [_centre_square(image, size) for image in images[start : start + batch]]
        logits = blackbox(torch.stack(chunk).to(device).float() / 255)
        labels.append(logits.argmax(1).cpu())
    return torch.cat(labels)


def _centre_square(image: torch.Tensor, size: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[:, top : top + side, left : left + side].float()
    return F.interpolate(square[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def load_training_set(
    path: Path,
    blackbox: BlackBox,
    device: torch.device,
    short_side: int = 256,
    workers: int = 4,
    video_every: int = 5,
    progress: bool = True,
    source: tuple[str, list[tuple[Path, int | None]]] | None = None,
) -> TrainingSet:
    """Find, decode and label the training images (pseudo-labels from the black box where there are none).

    `source`: what `find_source` answered for `path`, when the caller has already looked (to check the data before
    loading them)."""
    kind, records = source if source is not None else find_source(Path(path), blackbox.classes)
    if kind == "video":
        images: list[torch.Tensor] = read_video(records[0][0], every=video_every, short_side=short_side)
        problems: list[str] = []
        labels = None
    else:
        decoded, problems = decode_all([image for image, _ in records], short_side, workers, progress)
        if problems:
            warnings.warn(
                f"skipped {len(problems)} of {len(records)} unreadable image(s): {'; '.join(problems[:5])}"
                f"{' ...' if len(problems) > 5 else ''}",
                stacklevel=2,
            )
        kept = [(image, label) for image, (_, label) in zip(decoded, records) if image is not None]
        if not kept:
            raise DataError(f"none of the {len(records)} images in {path} could be read")
        images = [image for image, _ in kept]
        labels = None if kind == "unlabelled" else torch.tensor([label for _, label in kept], dtype=torch.long)
    if labels is None:
        labels = pseudo_labels(images, blackbox, device)
    description = {
        **data_identity(Path(path), source_files(Path(path), kind, records), SOURCE_FILES[kind]),
        "kind": kind,
        "labels": "black-box top-1 (pseudo-labels)" if kind in ("unlabelled", "video") else kind,
        "images": len(images),
        "skipped_unreadable": len(problems),
        "classes": int(labels.unique().numel()),
        "short_side": short_side,
    }
    return TrainingSet(images, labels, description)


# --- augmentation on the device -------------------------------------------------------------------------------


class BatchAugmenter:
    """Random resized crops + horizontal flips of in-memory uint8 images, cut on the device in one roi_align."""

    def __init__(
        self,
        images: list[torch.Tensor],
        device: torch.device,
        size: int = 224,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
    ) -> None:
        self.images = [image.to(device) for image in images]
        self.sizes = torch.tensor([image.shape[-2:] for image in images], dtype=torch.float64)  # (N, 2): H, W
        self.device = device
        self.size = size
        self.scale = scale
        self.ratio = ratio
        self.flip = flip

    def __len__(self) -> int:
        return len(self.images)

    def crop_boxes(self, indices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 4) boxes x0, y0, x1, y1 in each image's pixels, and (B,) flip flags, drawn on the CPU."""
        count = indices.numel()
        height, width = self.sizes[indices, 0], self.sizes[indices, 1]
        area = height * width * torch.empty(count, dtype=torch.float64).uniform_(*self.scale, generator=generator)
        log_ratio = torch.empty(count, dtype=torch.float64).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator
        )
        crop_w = torch.sqrt(area * log_ratio.exp()).clamp(max=width)
        crop_h = torch.sqrt(area / log_ratio.exp()).clamp(max=height)
        x0 = (width - crop_w) * torch.rand(count, dtype=torch.float64, generator=generator)
        y0 = (height - crop_h) * torch.rand(count, dtype=torch.float64, generator=generator)
        flips = (torch.rand(count, generator=generator) < 0.5) & self.flip
        return torch.stack([x0, y0, x0 + crop_w, y0 + crop_h], dim=1).float(), flips

    def __call__(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, size, size) float images in [0, 1] on the device."""
        boxes, flips = self.crop_boxes(indices, generator)
        chosen = [self.images[int(i)] for i in indices]
        height = max(image.shape[-2] for image in chosen)
        width = max(image.shape[-1] for image in chosen)
        # one spare row and column, filled by edge replication: bilinear samples at an image's right or bottom
        # edge must not reach into the zero padding of a wider or taller neighbour
        canvas = torch.zeros(len(chosen), 3, height + 1, width + 1, dtype=torch.uint8, device=self.device)
        for slot, image in enumerate(chosen):
            rows, cols = image.shape[-2:]
            canvas[slot, :, :rows, :cols] = image
            canvas[slot, :, :rows, cols] = image[:, :, -1]
            canvas[slot, :, rows, : cols + 1] = canvas[slot, :, rows - 1, : cols + 1]
        rois = torch.cat([torch.arange(len(chosen), dtype=torch.float32)[:, None], boxes], dim=1).to(self.device)
        crops = roi_align(canvas.float(), rois, output_size=self.size, sampling_ratio=2, aligned=True) / 255
        flips = flips.to(self.device)[:, None, None, None]
        return torch.where(flips, crops.flip(-1), crops).clamp_(0, 1)
