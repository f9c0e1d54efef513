from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.classes import imagenet_classes
from engine.errors import DataError
from trainer.data.images import BatchAugmenter, decode_image, find_source, load_training_set, read_video

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = imagenet_classes()


def write_image(path: Path, size: tuple[int, int] = (48, 40), colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)
    return path


def labelled_folder(root: Path, rows: list[str], images: list[str]) -> Path:
    for name in images:
        write_image(root / name)
    (root / "labels.csv").write_text("file,label,wnid,source\n" + "\n".join(rows) + "\n")
    return root


def test_labels_csv_folder(tmp_path):
    folder = labelled_folder(tmp_path, ["a.jpg,0,n01440764,x", "b.jpg,281,n02123045,x"], ["a.jpg", "b.jpg"])
    kind, records = find_source(folder, CLASSES)
    assert kind == "labels.csv" and [(p.name, label) for p, label in records] == [("a.jpg", 0), ("b.jpg", 281)]


def test_labels_naming_a_missing_image_is_an_error(tmp_path):
    folder = labelled_folder(tmp_path, ["a.jpg,0,,x", "gone.jpg,1,,x"], ["a.jpg"])
    with pytest.raises(DataError, match="gone.jpg"):
        find_source(folder, CLASSES)


def test_a_class_outside_the_black_box_is_an_error(tmp_path):
    folder = labelled_folder(tmp_path, ["a.jpg,1000,,x"], ["a.jpg"])
    with pytest.raises(DataError, match="outside 0..999"):
        find_source(folder, CLASSES)


def test_a_label_in_another_class_order_is_an_error(tmp_path):
    folder = labelled_folder(tmp_path, ["a.jpg,1,n01440764,x"], ["a.jpg"])  # n01440764 is class 0
    with pytest.raises(DataError, match="another class order"):
        find_source(folder, CLASSES)


def test_missing_and_empty_folders_are_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_source(tmp_path / "nowhere", CLASSES)
    with pytest.raises(DataError, match="no images"):
        find_source(tmp_path, CLASSES)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images"):
        find_source(tmp_path, CLASSES)


def test_image_folder_layout_by_wnid_index_or_name(tmp_path):
    write_image(tmp_path / "n01440764" / "1.jpg")
    write_image(tmp_path / "281" / "2.jpg")
    write_image(tmp_path / "espresso" / "3.jpg")
    kind, records = find_source(tmp_path, CLASSES)
    assert kind == "imagefolder"
    assert sorted(label for _, label in records) == [0, 281, 967]
    write_image(tmp_path / "not-a-class-xyz" / "4.jpg")
    with pytest.raises(DataError, match="not-a-class-xyz"):
        find_source(tmp_path, CLASSES)


def test_a_corrupt_jpeg_is_skipped_with_a_warning_and_counted(tmp_path, blackbox):
    folder = labelled_folder(tmp_path, ["a.jpg,0,,x", "b.jpg,1,,x", "c.jpg,2,,x"], ["a.jpg", "c.jpg"])
    good = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(good[: len(good) // 3])  # truncated
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 .*b\.jpg"):
        data = load_training_set(folder, blackbox, torch.device("cpu"), progress=False)
    assert data.description["skipped_unreadable"] == 1 and data.labels.tolist() == [0, 2]


def test_only_unreadable_images_is_an_error(tmp_path, blackbox):
    folder = labelled_folder(tmp_path, ["a.jpg,0,,x"], [])
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="none of the 1 images"):
        load_training_set(folder, blackbox, torch.device("cpu"), progress=False)


def test_unlabelled_images_get_the_black_box_top1(tmp_path, blackbox):
    from skimage import data as samples

    Image.fromarray(samples.chelsea()).save(tmp_path / "cat.jpg")
    data = load_training_set(tmp_path, blackbox, torch.device("cpu"), progress=False)
    assert data.description["kind"] == "unlabelled"
    assert 281 <= int(data.labels[0]) <= 285  # one of the domestic cats


def test_video_frames(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(10):
        writer.write(np.full((48, 64, 3), index * 20, dtype=np.uint8))
    writer.release()
    assert find_source(path, CLASSES)[0] == "video"
    frames = read_video(path, every=3)
    assert len(frames) == 4 and frames[0].shape == (3, 48, 64)


def test_decoding_scales_the_short_side_down_only(tmp_path):
    assert decode_image(write_image(tmp_path / "big.jpg", (600, 400)), 200).shape == (3, 200, 300)
    assert decode_image(write_image(tmp_path / "small.jpg", (60, 40)), 200).shape == (3, 40, 60)


def test_augmenter_crops_flips_and_is_reproducible():
    ramp = torch.arange(64, dtype=torch.uint8).repeat(3, 48, 1) * 4  # brightness grows to the right
    tall = torch.full((3, 80, 30), 100, dtype=torch.uint8)
    augmenter = BatchAugmenter([ramp, tall], torch.device("cpu"), size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    indices = torch.tensor([0, 1, 0, 0, 0, 0, 0, 0])
    batch = augmenter(indices, torch.Generator().manual_seed(0))
    assert batch.shape == (8, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    # a constant image stays so: resampling weights sum to 1 up to a few u; measured on AMD 3e-8 (atol: 300x)
    assert torch.allclose(batch[1], torch.full_like(batch[1], 100 / 255), atol=1e-5)
    slopes = torch.sign(batch[indices == 0, 0, 16, -4] - batch[indices == 0, 0, 16, 4])
    assert set(slopes.tolist()) == {1.0, -1.0}  # some crops flipped, some not
    assert torch.equal(batch, augmenter(indices, torch.Generator().manual_seed(0)))
