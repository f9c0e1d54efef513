"""Reading evaluation data: boxes.csv, ImageNet's bounding-box XML, and the errors a user can meet."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.classes import imagenet_classes
from engine.errors import DataError
from trainer.data.boxes import open_dataset, read_boxes_csv

HEADER = "file,label,orig_width,orig_height,x0,y0,x1,y1\n"


def write_image(path: Path, width: int, height: int) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2] = (0, 0, 255)  # top half red (BGR on disk)
    cv2.imwrite(str(path), image)


def test_dev_set_reads_630_images_with_their_boxes(data_root):
    dataset = open_dataset(data_root / "imagenet-val-dev")
    assert len(dataset) == 630
    assert sum(len(record.boxes) for record in dataset) == 952  # one row per box in boxes.csv
    sample = dataset.load(0)
    assert sample.image.shape == (227, 227, 3) and sample.image.dtype == np.uint8
    assert sample.file == "ILSVRC2012_val_00000556.JPEG" and sample.label == 625
    # float64 arithmetic on decimals: ~1e-16 relative, within assert_allclose's default rtol 1e-7 here and below
    np.testing.assert_allclose(sample.boxes, [[0.0, 1.14, 122.58, 226.24]])


def test_rows_of_one_image_are_grouped(tmp_path):
    csv_path = tmp_path / "boxes.csv"
    csv_path.write_text(HEADER + "a.png,3,10,10,0,0,5,5\nb.png,4,10,10,1,1,2,2\na.png,3,10,10,5,5,9,9\n")
    records = read_boxes_csv(csv_path)
    assert [(r.file, r.label, len(r.boxes)) for r in records] == [("a.png", 3, 2), ("b.png", 4, 1)]


def test_image_is_stretched_and_rgb(tmp_path):
    write_image(tmp_path / "a.png", 100, 50)
    (tmp_path / "boxes.csv").write_text(HEADER + "a.png,3,100,50,0,0,100,25\n")
    sample = open_dataset(tmp_path, image_size=40).load(0)
    assert sample.image.shape == (40, 40, 3)
    assert tuple(sample.image[0, 0]) == (255, 0, 0)  # red stays red: BGR converted to RGB
    np.testing.assert_allclose(sample.boxes, [[0, 0, 40, 20]])  # boxes scaled with the image


def test_missing_image_is_a_data_error_for_that_image(tmp_path):
    (tmp_path / "boxes.csv").write_text(HEADER + "gone.png,3,10,10,0,0,5,5\n")
    dataset = open_dataset(tmp_path)
    with pytest.raises(DataError, match="gone.png: image missing"):
        dataset.load(0)


def test_box_outside_the_image_is_dropped_and_counted(tmp_path):
    write_image(tmp_path / "a.png", 40, 40)
    rows = "a.png,3,40,40,0,0,20,20\na.png,3,40,40,50,50,80,80\na.png,3,40,40,0,0,40.5,40\n"
    (tmp_path / "boxes.csv").write_text(HEADER + rows)
    sample = open_dataset(tmp_path, image_size=40).load(0)
    assert sample.dropped_boxes == 1
    np.testing.assert_allclose(sample.boxes, [[0, 0, 20, 20], [0, 0, 40, 40]])  # small overshoot clipped


def test_image_with_every_box_outside_is_a_data_error(tmp_path):
    write_image(tmp_path / "a.png", 40, 40)
    (tmp_path / "boxes.csv").write_text(HEADER + "a.png,3,40,40,50,50,80,80\n")
    with pytest.raises(DataError, match="outside"):
        open_dataset(tmp_path).load(0)


def test_empty_boxes_file_is_a_data_error(tmp_path):
    (tmp_path / "boxes.csv").write_text(HEADER)
    with pytest.raises(DataError, match="empty"):
        open_dataset(tmp_path)


def test_malformed_boxes_file_is_a_data_error(tmp_path):
    (tmp_path / "boxes.csv").write_text("file,label\na.png,3\n")
    with pytest.raises(DataError, match="columns"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_imagenet_xml_annotations(tmp_path):
    images, annotations = tmp_path / "images", tmp_path / "xml"
    images.mkdir()
    annotations.mkdir()
    write_image(images / "ILSVRC2012_val_00000001.JPEG", 500, 375)
    wnid = imagenet_classes()[65].wnid
    (annotations / "ILSVRC2012_val_00000001.xml").write_text(f"""<annotation>
        <filename>ILSVRC2012_val_00000001</filename>
        <size><width>500</width><height>375</height><depth>3</depth></size>
        <object><name>{wnid}</name><bndbox><xmin>111</xmin><ymin>108</ymin><xmax>272</xmax><ymax>225</ymax></bndbox></object>
        <object><name>{wnid}</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>499</xmax><ymax>374</ymax></bndbox></object>
    </annotation>""")
    sample = open_dataset(images, annotations=annotations).load(0)
    assert sample.label == 65 and sample.image.shape == (227, 227, 3)
    scale = np.array([227 / 500, 227 / 375] * 2)
    np.testing.assert_allclose(sample.boxes, np.array([[111, 108, 273, 226], [0, 0, 500, 375]]) * scale)
