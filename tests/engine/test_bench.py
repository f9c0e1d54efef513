"""The benchmark and the engine CLI, on tiny runs (timing goals live in the benchmark, not in tests)."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import main
from engine.tools.bench import Spread, add_ratios, run_bench, table


def test_bench_measures_and_reports(untrained_masker, blackbox, data_root, tmp_path) -> None:
    report = run_bench(
        untrained_masker,
        blackbox,
        "untrained",
        ("onnxruntime", "torch-cuda"),
        data_root / "videos" / "box.mp4",
        frames=4,
        repeats=2,
        seconds=0.01,
        evidence=True,
        log=lambda line: None,
        live_videos=(data_root / "videos" / "realshort.mp4",),
        view_size=(160, 120),
    )
    rows = {row["label"]: row for row in report["results"]}
    assert set(rows) | set(report["skipped"]) == {"onnxruntime", "torch-cuda"}
    result = rows["onnxruntime"]
    assert "onnxruntime FP32" in result["backend"]
    for key in ("masks_per_s_batch1", "masks_per_s_batch8", "e2e_fps"):
        spread = Spread(**result[key])
        assert len(spread.runs) == 2 and 0 < spread.low <= spread.median <= spread.high
    assert result["e2e_frames"] == 4 and 0 <= result["temporal_stability"] < 1
    assert set(result["stage_ms"]) == {"preprocess", "model", "composite", "evidence", "total"}
    assert "ratio_vs_reference" not in result  # torch-cpu (its reference) was not measured
    (live,) = result["live"]  # the live pipeline: read ahead, views at the view size, evidence as its own stream
    assert live["size"] == "320x240" and live["frames"] == 4 and Spread(**live["fps"]).median > 0
    assert set(live["stage_ms"]) == {"preprocess", "model", "composite", "total"}  # no evidence in the mask's path
    assert Spread(**live["evidence_per_s"]).median >= 0
    if "torch-cuda" in report["skipped"]:
        assert "GPU" in report["skipped"]["torch-cuda"]
    text = table(report)
    assert "onnxruntime" in text and "box.mp4 (640x480)" in text and "realshort.mp4 320x240" in text
    json.dumps(report)  # the report is plain JSON


def test_ratios_against_the_reference_row() -> None:
    def row(label: str, reference: str, rate: float) -> dict:
        keys = ("masks_per_s_batch1", "masks_per_s_batch8", "e2e_fps")
        return {"label": label, "reference": reference, **{key: {"median": rate} for key in keys}}

    results = [
        row("torch-cpu", "", 10.0),
        row("onnxruntime", "torch-cpu", 30.0),
        row("tensorrt", "torch-cuda", 5.0),
    ]
    add_ratios(results)
    assert "ratio_vs_reference" not in results[0] and "ratio_vs_reference" not in results[2]
    assert results[1]["ratio_vs_reference"] == pytest.approx(
        {"masks_per_s_batch1": 3, "masks_per_s_batch8": 3, "e2e_fps": 3}
    )


def test_cli_info_and_errors(capsys, tmp_path) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "auto:" in out
    # bad arguments are usage errors (status 2), before any work: tests/engine/test_cli_arguments.py
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--model", str(tmp_path / "missing.safetensors")])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_cli_render(untrained_model_file, data_root, tmp_path, capsys) -> None:
    output = tmp_path / "explained.mp4"
    code = main(
        [
            "render",
            str(data_root / "videos" / "realshort.mp4"),
            "-o",
            str(output),
            "--model",
            str(untrained_model_file),
            "--class",
            "tabby",
            "--view",
            "overlay",
            "--backend",
            "onnxruntime",
            "--max-frames",
            "3",
            "--batch",
            "2",
        ]
    )
    assert code == 0 and "wrote 3 frames" in capsys.readouterr().out
    bad = tmp_path / "not-a-video.mp4"
    bad.write_text("nope")
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(bad), "-o", str(tmp_path / "x.mp4"), "--model", str(untrained_model_file)])
    assert exit_info.value.code == 2 and "not a video" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def _with_blackbox(model_file, blackbox: dict, path):
    """A copy of `model_file` whose card names another black box."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model_file), framework="pt") as handle:
        card = json.loads(handle.metadata()["card"])
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    card["blackbox"] = blackbox
    save_file(state, str(path), metadata={"card": json.dumps(card)})
    return path


@pytest.mark.parametrize(
    ("card_blackbox", "message"),
    [
        ({"name": "efficientnet_lite0", "weights_sha256": "0" * 64}, "belongs to the black box"),  # other weights
        ({"name": "resnet50", "weights_sha256": "1" * 64}, "resnet50"),  # another black box, not available offline
        ({"name": "tests.engine.user_blackbox:tiny", "weights_sha256": "2" * 64}, "belongs to the black box"),
    ],
)
def test_a_model_of_another_blackbox_is_refused(untrained_model_file, tmp_path, capsys, card_blackbox, message) -> None:
    """Cards naming other black boxes: clear errors from the CLI and from the Explainer, never a traceback."""
    from engine.api import Explainer
    from engine.errors import SaliencyError

    other = _with_blackbox(untrained_model_file, card_blackbox, tmp_path / "other.safetensors")
    assert main(["build", str(other), "--backend", "onnxruntime", "--out", str(tmp_path / "cache")]) == 1
    assert message in capsys.readouterr().err
    with pytest.raises(SaliencyError, match=message):
        Explainer(other, "torch-cpu")
