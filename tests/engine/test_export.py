"""ONNX export: FP32 and FP16 graphs against PyTorch (ONNX Runtime on the CPU), the FP32 mask ratio, the cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from engine.export.cache import cached_onnx, onnx_cache_path
from engine.export.check import compare, ratio_nodes, reference_outputs, run_onnx, with_channels_output
from engine.export.make import example_feed
from engine.tolerances import (
    FP16_MAX_MEAN_ABS,
    FP16_MIN_AREA,
    FP16_MIN_IOU,
    FP32_CHANNEL_RTOL,
    FP32_LOGITS_RTOL,
    mask_iou,
)


def test_saliency_graph_matches_the_masker(graphs, untrained_masker, blackbox) -> None:
    """The exported graph is the masker's forward pass (mask at 1/4) plus the black box's logits."""
    feed = example_feed("saliency", 224, batch=2)
    with torch.no_grad():
        mask_low, logits = graphs.saliency(**feed)
        expected_logits = blackbox(feed["image"])
        targets = torch.where(feed["target"] < 0, expected_logits.argmax(1), feed["target"])
        expected_mask = untrained_masker.forward_aux(feed["image"], targets)["mask_low"]
    # The same PyTorch ops in the same order: measured bit-identical on AMD. The tolerances only leave room for a
    # kernel choice that differs between the two calls (logits: the FP32_LOGITS_RTOL budget; the mask lies in [0, 1]).
    torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mask_low, expected_mask, atol=1e-5, rtol=1e-5)
    assert mask_low.shape == (2, 1, 56, 56)


@pytest.mark.parametrize("graph", ["saliency", "classifier"])
def test_fp32_export_matches_pytorch(graphs, onnx_files, graph: str) -> None:
    module = graphs.saliency if graph == "saliency" else graphs.classifier
    check = compare(module, onnx_files[(graph, "fp32")], graph, "fp32", 224, batch=3)  # batch is dynamic
    assert check.passed, check.describe()
    assert check.logits_rel_diff <= FP32_LOGITS_RTOL, check.describe()
    if graph == "saliency":
        # The channels within their relative tolerance, every mask pixel within the bound it implies there
        # (M = |C0| / (|C0| + |C1| + eps) magnifies FP32 noise where both channels vanish: engine.tolerances).
        assert check.channel_rel_diff is not None and check.channel_rel_diff <= FP32_CHANNEL_RTOL, check.describe()
        assert check.mask_bound_used is not None and check.mask_bound_used <= 1.0, check.describe()
    assert check.top1_agreement == 1.0


def test_fp16_export_matches_pytorch(graphs, onnx_files) -> None:
    check = compare(graphs.saliency, onnx_files[("saliency", "fp16")], "saliency", "fp16", 224, batch=2)
    # The untrained masker's mask has substance even on random images (53% area): measured IoU 0.9935, mean 2.6e-3
    assert check.iou is not None and check.iou > FP16_MIN_IOU, check.describe()
    assert check.mean_abs_diff < FP16_MAX_MEAN_ABS, check.describe()
    # The FP32 ratio on FP16 channels: every pixel within the bound at the measured channel difference
    assert check.mask_bound_used is not None and check.mask_bound_used <= 1.0, check.describe()
    classifier = compare(graphs.classifier, onnx_files[("classifier", "fp16")], "classifier", "fp16", 224)
    assert classifier.top1_agreement == 1.0, classifier.describe()


def test_fp16_graph_has_fp32_io_and_an_fp32_mask_ratio(onnx_files) -> None:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_files[("saliency", "fp16")])))
    float32, float16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    io_types = {value.name: value.type.tensor_type.elem_type for value in (*model.graph.input, *model.graph.output)}
    assert io_types == {
        "image": float32,
        "target": onnx.TensorProto.INT64,
        "mask_low": float32,
        "logits": float32,
    }
    weights = [init for init in model.graph.initializer if len(init.dims) == 4]  # convolution kernels
    assert weights and all(init.data_type == float16 for init in weights)
    types = {value.name: value.type.tensor_type.elem_type for value in model.graph.value_info}
    types.update(io_types)
    ratio = ratio_nodes(model)
    assert [node.op_type for node in ratio if node.op_type == "Div"] == ["Div"]
    for node in ratio:
        if node.op_type in ("Div", "Add", "Abs"):
            assert all(types.get(name) == float32 for name in node.output), (node.name, node.op_type)
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    assert types[conv.output[0]] == float16  # the rest of the network is FP16


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_static_paddings_are_folded_into_the_convolutions(onnx_files, precision: str) -> None:
    """timm's dynamic 'same' paddings leave neither Shape arithmetic nor Pad nodes in the exported graphs."""
    for graph in ("saliency", "classifier"):
        ops = {node.op_type for node in onnx.load(str(onnx_files[(graph, precision)])).graph.node}
        assert not ops & {"Pad", "Shape", "Ceil"}, (graph, sorted(ops))
        assert "Conv" in ops


def test_onnx_runs_with_any_batch(onnx_files) -> None:
    for batch in (1, 8):
        mask_low, logits = run_onnx(onnx_files[("saliency", "fp32")], example_feed("saliency", 224, batch))
        assert mask_low.shape == (batch, 1, 56, 56) and logits.shape == (batch, 1000)
        assert 0 <= mask_low.min() and mask_low.max() <= 1


def test_cache_reuses_and_repairs_files(graphs, onnx_files, tmp_path) -> None:
    cached = onnx_files[("classifier", "fp32")]
    assert cached_onnx(graphs, "classifier", "fp32") == cached
    # A damaged copy (interrupted write, disk error) in another cache root is re-exported, not trusted.
    path = onnx_cache_path(graphs, "classifier", "fp32", root=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(cached.read_bytes()[:1000])
    repaired = cached_onnx(graphs, "classifier", "fp32", root=tmp_path)
    assert repaired == path
    onnx.checker.check_model(str(repaired))
    assert repaired.stat().st_size == cached.stat().st_size
    assert graphs.key[:24] in str(path)  # keyed by the model's hash


def test_channels_output_is_the_mask_ratio_input(graphs, onnx_files) -> None:
    """The comparator's extra output: the head channels, as PyTorch's MaskRatio receives them (FP32 tolerance)."""
    feed = example_feed("saliency", 224, batch=2)
    model = with_channels_output(onnx.load(str(onnx_files[("saliency", "fp32")])))
    mask_low, _, channels = run_onnx(model, feed)
    expected = reference_outputs(graphs.saliency, feed)
    assert expected.channels is not None and channels.shape == expected.channels.shape == (2, 2, 56, 56)
    scale = np.abs(expected.channels).max()
    assert np.abs(channels - expected.channels).max() <= FP32_CHANNEL_RTOL * scale
    a, b = np.abs(channels[:, 0:1]), np.abs(channels[:, 1:2])
    np.testing.assert_allclose(mask_low, a / (a + b + expected.eps), rtol=1e-6)  # the ratio of these channels


def test_mask_iou() -> None:
    a = np.zeros((4, 4), np.float32)
    assert mask_iou(a, a) == 1.0
    b = a.copy()
    a[:2] = 0.9
    b[1:3] = 0.6
    assert mask_iou(a, b) == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    """The bundled default model, exported at both precisions."""
    from engine.api import load_masker
    from engine.export.graphs import model_graphs
    from engine.paths import DEFAULT_MODEL

    if not DEFAULT_MODEL.exists():
        pytest.skip(f"the bundled model {DEFAULT_MODEL} is not in this checkout")
    model = load_masker(DEFAULT_MODEL)
    graphs = model_graphs(model.masker, model.blackbox, name="lite0-default")
    root = tmp_path_factory.mktemp("default-exports")
    return graphs, {p: cached_onnx(graphs, "saliency", p, root=root) for p in ("fp32", "fp16")}


def test_bundled_model_exports_meet_the_targets(default_model, data_root) -> None:
    """On the trained model and real frames: FP32 within its bounds everywhere, FP16 mask IoU > 0.98."""
    from engine.tools.build import real_images

    graphs, files = default_model
    frames = real_images(graphs.input_size)
    assert frames is not None
    fp32 = compare(graphs.saliency, files["fp32"], "saliency", "fp32", 224, images=frames)
    assert fp32.passed and fp32.channel_rel_diff is not None, fp32.describe()
    assert fp32.channel_rel_diff <= FP32_CHANNEL_RTOL, fp32.describe()
    fp16 = compare(graphs.saliency, files["fp16"], "saliency", "fp16", 224, images=frames)
    # measured on AMD: area 24.6%, IoU 0.9955, mean 9.7e-4 (engine.tolerances)
    assert fp16.mask_area is not None and fp16.mask_area > FP16_MIN_AREA, fp16.describe()
    assert fp16.iou is not None and fp16.iou > FP16_MIN_IOU, fp16.describe()
    assert fp16.mean_abs_diff < FP16_MAX_MEAN_ABS, fp16.describe()
