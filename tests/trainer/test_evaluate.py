"""The evaluation CLI and the library function the trainer calls, on 2-3 real dev images."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import pytest

from tests.trainer.test_provenance import absolute_paths
from trainer.evaluation.evaluate import evaluate_masker, main

HEADER = "file,label,orig_width,orig_height,x0,y0,x1,y1\n"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, data_root) -> Path:
    """3 dev images, plus a row for a missing image and a box outside the image of the first."""
    folder = tmp_path_factory.mktemp("evaldata")
    source = data_root / "imagenet-val-dev"
    lines = (source / "boxes.csv").read_text().splitlines()[1:4]
    for line in lines:
        shutil.copy(source / line.split(",")[0], folder)
    first = lines[0].split(",")
    missing = f"missing.JPEG,{first[1]},500,400,0,0,100,100"
    outside = ",".join([*first[:4], "300", "300", "400", "400"])  # a second box of the first image
    (folder / "boxes.csv").write_text(HEADER + "\n".join([lines[0], missing, *lines[1:], outside]) + "\n")
    return folder


def test_cli_writes_table_csv_json_and_contact_sheet(small_data, tmp_path, capsys):
    out = tmp_path / "eval"
    methods = "center,max,gt,gradient,gradcam,iterative,model"
    argv = [
        "--data",
        str(small_data),
        "--methods",
        methods,
        "--untrained",
        "--iterations",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--sheet",
        "2",
        "--limit",
        "3",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "LE paper %" in printed and "Masking model (UNTRAINED" in printed and "min-max" in printed

    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 2 * 7  # the first 3 images: 2 usable x 7 methods; the missing image is left out
    summary = read_csv(out / "summary.csv")
    assert [line["method"] for line in summary] == methods.split(",")
    gt_line = summary[2]
    assert float(gt_line["loc_error_paper"]) == 0.0 and gt_line["images"] == "2"

    report = json.loads((out / "summary.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert report["images"] == 2
    assert any("missing.JPEG: image missing" in e for e in report["errors"])
    assert any("outside the image" in e for e in report["errors"])
    assert report["methods"][3]["normalised"] is True and "min-max" in report["normalisation"]
    assert report["data"]["name"] == small_data.name and report["data"]["images"] == 3  # the first 3 asked for
    assert absolute_paths(report) == [] and str(small_data) not in json.dumps(report)  # no path of this machine

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 8 * 227 and sheet.shape[0] > 2 * 227


def test_resume_evaluates_only_the_rest(small_data, tmp_path):
    out = tmp_path / "eval"
    common = [
        "--data",
        str(small_data),
        "--methods",
        "center,max",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--sheet",
        "0",
    ]
    assert main([*common, "--limit", "3"]) == 0  # 2 usable images among the first 3
    assert len(read_csv(out / "per_image.csv")) == 4
    assert main([*common, "--resume"]) == 0
    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 6 and len({(r["file"], r["method"]) for r in rows}) == 6
    (out / "per_image.csv").write_text("file,method\n")  # rows of another version: refused, not misaligned
    assert main([*common, "--resume"]) == 2


def test_cli_errors_are_messages(tmp_path, capsys):
    (tmp_path / "boxes.csv").write_text(HEADER)
    assert main(["--data", str(tmp_path), "--methods", "center", "--out", str(tmp_path / "o")]) == 2
    assert "boxes file is empty" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--methods", "center,bogus"]) == 2
    assert "unknown method" in capsys.readouterr().err
    missing = tmp_path / "nope.safetensors"
    assert main(["--data", str(tmp_path), "--methods", "model", "--model", str(missing)]) == 2


def test_evaluate_masker_for_validation(untrained_masker, blackbox, small_data):
    untrained_masker.train()
    result = evaluate_masker(untrained_masker, blackbox, small_data, limit=3, device="cpu")
    assert untrained_masker.training  # the caller's mode is restored
    assert result["images"] == 2 and len(result["errors"]) == 2  # the missing image and the outside box
    for key in ("loc_error_paper", "loc_error_mean", "saliency_metric", "mean_mask"):
        assert key in result
    assert 0 <= result["loc_error_paper"] <= 100 and 0 < result["mean_mask"] < 1


def test_summary_leaves_the_warm_up_batch_out_of_the_time():
    from trainer.evaluation.scoring import summarise

    def row(hit: int, ms: float, warmup: int) -> dict:
        return {
            "hit_paper": hit,
            "hit_mean": 1,
            "saliency": 0.5,
            "ms": ms,
            "mask_mean": 0.2,
            "empty_mask": 0,
            "blackbox_correct": 1,
            "warmup": warmup,
        }

    line = summarise([row(1, 900.0, 1), row(0, 10.0, 0), row(1, 20.0, 0), row(1, 30.0, 0)])
    assert line["ms_per_image"] == 20.0 and line["loc_error_paper"] == 25.0 and line["images"] == 4
    assert summarise([row(1, 900.0, 1)])["ms_per_image"] == 900.0  # nothing else: the warm-up batch it is
