"""Evaluation data: images with their class and ground-truth boxes.

Two input formats, both read into the same `EvalDataset`:
- a folder with `boxes.csv` (the format of ../shared/data/imagenet-val-dev): one row per box,
  `file,label,orig_width,orig_height,x0,y0,x1,y1`, boxes in pixel coordinates of the stored image;
- the real ImageNet validation set: a folder of images and a folder of the standard bounding-box XML files
  (`ILSVRC2012_val_00000001.xml`, Pascal VOC layout, boxes in pixels of the original image, the class as a wnid).

Every image is stretched to `image_size` x `image_size` (227, the size of the dev set, by default) and its boxes are
scaled with it, so both formats are evaluated the same way. Problems with single images (a missing or unreadable
image, a box outside the image) are not fatal: `EvalDataset.load` raises `DataError` for that image and the evaluation
counts and reports it; a boxes file without any box is fatal.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.classes import imagenet_classes
from engine.errors import DataError
from trainer.data.provenance import data_identity, relative_files

IMAGE_SIZE = 227  # the dev set's images are stretched to 227 x 227 (the boxes are in those pixels)
BOX_TOLERANCE = 1.0  # pixels a box may overshoot the image (rounding in the conversion) before it counts as outside
CSV_COLUMNS = ("file", "label", "orig_width", "orig_height", "x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class ImageRecord:
    """One image as listed in the boxes file: boxes (K, 4) as x0, y0, x1, y1 in `source_size` pixels."""

    file: str
    label: int
    boxes: np.ndarray
    source_size: tuple[int, int] | None = None  # (width, height) of the pixels the boxes are in; None: the image's


@dataclass(frozen=True)
class Sample:
    """A loaded image: uint8 (H, W, 3) RGB at the evaluation size, its class, its boxes (K, 4) in its pixels."""

    file: str
    label: int
    image: np.ndarray
    boxes: np.ndarray
    dropped_boxes: int  # boxes outside the image, left out of this sample (counted in the report)


class EvalDataset:
    """The images of one evaluation folder with their ground truth; `load(i)` reads image i."""

    def __init__(
        self,
        image_dir: Path,
        records: list[ImageRecord],
        image_size: int = IMAGE_SIZE,
        truth_files: tuple[Path, ...] = (),
    ) -> None:
        if not records:
            raise DataError(f"no ground-truth boxes for the images in {image_dir}: the boxes file is empty")
        self.image_dir = Path(image_dir)
        self.records = records
        self.image_size = image_size
        self.truth_files = truth_files  # the files the boxes were read from (boxes.csv, or the XML files)

    def identity(self, limit: int | None = None) -> dict:
        """Name, content hash and count of the first `limit` images (None: all) with their ground truth, for cards
        and reports: never the folder's path (trainer.data.provenance)."""
        records = self.records[: limit or len(self.records)]
        files = [self.image_dir / record.file for record in records] + list(self.truth_files)
        what = "the ground-truth files and every image " + (f"of the first {limit}" if limit else "listed")
        return {**data_identity(self.image_dir, relative_files(self.image_dir, files), what), "images": len(records)}

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def load(self, index: int) -> Sample:
        """Image `index` stretched to image_size, boxes scaled with it; DataError when it cannot be used."""
        record = self.records[index]
        path = self.image_dir / record.file
        # the messages name the file inside the folder, not the folder's path: they are kept in reports and cards
        if not path.is_file():
            raise DataError(f"{record.file}: image missing (not in the folder {self.image_dir.name})")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f"{record.file}: not a readable image")
        height, width = bgr.shape[:2]
        source_width, source_height = record.source_size or (width, height)
        boxes, dropped = _inside_boxes(record, source_width, source_height)
        if len(boxes) == 0:
            raise DataError(
                f"{record.file}: every box lies outside the {source_width}x{source_height} image: "
                f"{record.boxes.tolist()}"
            )
        size = self.image_size
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if (height, width) != (size, size):
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        scale = np.array([size / source_width, size / source_height] * 2)
        return Sample(record.file, record.label, image, boxes * scale, dropped)


def _inside_boxes(record: ImageRecord, width: int, height: int) -> tuple[np.ndarray, int]:
    """The boxes that lie inside the image (small overshoots clipped), and how many did not."""
    boxes = record.boxes
    limits = np.array([width, height, width, height], dtype=float)
    inside = (
        (boxes >= -BOX_TOLERANCE).all(axis=1)
        & (boxes <= limits + BOX_TOLERANCE).all(axis=1)
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )
    clipped = np.clip(boxes[inside], 0, limits)
    return clipped, int((~inside).sum())


def open_dataset(
    data: str | Path, *, annotations: str | Path | None = None, image_size: int = IMAGE_SIZE
) -> EvalDataset:
    """A folder with boxes.csv, or (annotations=XML folder) a folder of ImageNet validation images."""
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"evaluation data folder {data} does not exist (use --data)")
    if annotations is not None:
        xml_files = tuple(sorted(Path(annotations).glob("*.xml")))
        return EvalDataset(data, read_imagenet_xml(Path(annotations)), image_size, xml_files)
    csv_path = data / "boxes.csv"
    if not csv_path.is_file():
        raise DataError(f"{data} has no boxes.csv ({','.join(CSV_COLUMNS)}: one row per ground-truth box)")
    return EvalDataset(data, read_boxes_csv(csv_path), image_size, (csv_path,))


def read_boxes_csv(path: Path) -> list[ImageRecord]:
    """boxes.csv (one row per box) -> one record per image, in file order. Boxes are in the stored image's pixels."""
    grouped: dict[str, tuple[int, list[list[float]]]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: columns {sorted(missing)} missing; expected {','.join(CSV_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["label"])
                box = [float(row[key]) for key in ("x0", "y0", "x1", "y1")]
            except (TypeError, ValueError) as error:
                raise DataError(f"{path}:{line}: malformed row {row}: {error}") from error
            grouped.setdefault(row["file"], (label, []))[1].append(box)
    return [ImageRecord(file, label, np.array(boxes, dtype=float)) for file, (label, boxes) in grouped.items()]


def read_imagenet_xml(folder: Path) -> list[ImageRecord]:
    """ImageNet's validation bounding-box XML files (one per image) -> records; classes from the wnids."""
    if not folder.is_dir():
        raise DataError(f"annotation folder {folder} does not exist")
    index_of = {info.wnid: info.index for info in imagenet_classes()}
    records = []
    for path in sorted(folder.glob("*.xml")):
        records.append(_read_one_xml(path, index_of))
    return records


def _read_one_xml(path: Path, index_of: dict[str, int]) -> ImageRecord:
    try:
        root = ElementTree.parse(path).getroot()
        stem = root.findtext("filename") or path.stem
        width = int(root.findtext("size/width") or 0)
        height = int(root.findtext("size/height") or 0)
        wnids, boxes = [], []
        for obj in root.iter("object"):
            wnids.append(obj.findtext("name"))
            boxes.append([float(obj.findtext(f"bndbox/{key}") or "nan") for key in ("xmin", "ymin", "xmax", "ymax")])
    except (ElementTree.ParseError, ValueError) as error:
        raise DataError(f"{path}: not a readable ImageNet bounding-box file: {error}") from error
    if not boxes or wnids[0] not in index_of:
        raise DataError(f"{path}: no object with a known ImageNet wnid")
    if width <= 0 or height <= 0:
        raise DataError(f"{path}: the image size is missing")
    file = stem if Path(stem).suffix else f"{stem}.JPEG"
    # VOC boxes are inclusive pixel indices (xmax is the last pixel): +1 gives pixel-edge coordinates.
    edges = np.array(boxes, dtype=float) + np.array([0.0, 0.0, 1.0, 1.0])
    return ImageRecord(file, index_of[wnids[0]], edges, source_size=(width, height))
