"""Masks for classes the black box does not see: the choice of classes, the figures, the command on real data."""

from __future__ import annotations

import json

import numpy as np
import torch

from trainer.studies.weak_classes import (
    WEAK_PROBABILITY,
    Case,
    largest_blob,
    main,
    passes,
    summarise_cases,
    weak_targets,
)


def test_weak_targets_by_kind():
    probabilities = torch.full((2, 200), 0.5 / 198)  # ~0.0025 each: all below 1% ...
    probabilities[:, :2] = 0.25  # ... but classes 0 and 1
    probabilities[:, 2:200] = torch.linspace(0.005, 0.0001, 198)  # a strict order below 1% (rows need not sum to 1)
    targets = weak_targets(probabilities, other_top1=[0, 150], tail=3, random_count=4, generator=torch.Generator())
    for chosen in targets:
        kinds = [kind for kind, _ in chosen]
        assert kinds.count("tail") == 3 and kinds.count("random") == 4
        assert [c for kind, c in chosen if kind == "tail"] == [97, 98, 99]  # ranks 98..100 of the top-100
        assert all(probabilities[0, c] < WEAK_PROBABILITY for _, c in chosen)
    assert ("other", 0) not in targets[0]  # class 0 has 25% here: not a weak target
    assert ("other", 150) in targets[1]


def test_blobs_and_the_goal():
    mask = np.zeros((10, 10), dtype=np.float32)
    assert largest_blob(mask) == 0.0 and passes(0.0, 0.0)
    mask[1:3, 1:3] = 0.9  # 4 pixels
    mask[6:9, 6:9] = 0.8  # 9 pixels
    assert largest_blob(mask) == 0.09
    assert not passes(float(mask.mean()), float(mask.max()))
    assert passes(0.02, 0.5) and not passes(0.021, 0.1)


def test_summary_per_source_and_kind_with_a_gate():
    cases = [
        Case("clip", "0", "tail", 5, 0.004, 95, 0.1, 0.9, 0.05, 0.5, 0),
        Case("clip", "0", "random", 7, 0.0001, 600, 0.0, 0.1, 0.0, 0.01, 1),
        Case("clip", "10", "tail", 5, 0.008, 91, 0.01, 0.2, 0.0, 0.1, 1),
    ]
    summary = summarise_cases(cases, gate=0.005)
    assert summary["clip"]["all"]["cases"] == 3 and summary["clip"]["all"]["frames"] == 2
    assert summary["clip"]["tail"]["pass_share"] == 0.5
    assert summary["clip"]["all"]["frames_all_pass"] == 0.5  # frame 0 has a failing case
    assert summary["clip"]["all"]["gated_pass_share"] == 1.0  # the failing case's 0.004 is under the gate
    assert summary["all"]["max_blob"] == 0.05


def test_command_on_dev_images_and_a_video(untrained_model_file, data_root, tmp_path, one_thread):
    out = tmp_path / "weak"
    argv = ["--model", str(untrained_model_file), "--limit", "2", "--videos", "realshort.mp4", "--frame-every", "18"]
    argv += ["--tail", "2", "--random", "1", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["imagenet-val-dev"]["tail"]["cases"] == 4  # 2 images x 2 tail classes
    assert summary["realshort.mp4"]["random"]["frames"] == 2  # frames 0 and 18
    assert (out / "cases.csv").read_text().startswith("source,item,kind,target,probability")
