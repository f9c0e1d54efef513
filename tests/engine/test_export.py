"""ONNX export: FP32 and FP16 graphs against PyTorch (ONNX Runtime on the CPU), the FP32 mask ratio, the cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from engine.export import (
    FP16_MIN_IOU,
    FP32_MAX_ABS,
    cached_onnx,
    compare,
    example_feed,
    mask_iou,
    onnx_cache_path,
    ratio_nodes,
    run_onnx,
)


def test_saliency_graph_matches_the_masker(graphs, untrained_masker, blackbox) -> None:
    """The exported graph is the masker's forward pass (mask at 1/4) plus the black box's logits."""
    feed = example_feed("saliency", 224, batch=2)
    with torch.no_grad():
        mask_low, logits = graphs.saliency(**feed)
        expected_logits = blackbox(feed["image"])
        targets = torch.where(feed["target"] < 0, expected_logits.argmax(1), feed["target"])
        expected_mask = untrained_masker.forward_aux(feed["image"], targets)["mask_low"]
    torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mask_low, expected_mask, atol=1e-5, rtol=1e-5)
    assert mask_low.shape == (2, 1, 56, 56)


@pytest.mark.parametrize("graph", ["saliency", "classifier"])
def test_fp32_export_matches_pytorch(graphs, onnx_files, graph: str) -> None:
    module = graphs.saliency if graph == "saliency" else graphs.classifier
    check = compare(module, onnx_files[(graph, "fp32")], graph, "fp32", 224, batch=3)  # batch is dynamic
    assert check.passed, check.describe()
    if graph == "saliency":
        # M = |C0| / (|C0| + |C1| + eps) magnifies FP32 noise where both channels vanish: gate on the rest.
        assert check.conditioned_max_abs_diff < FP32_MAX_ABS and check.ill_conditioned < 0.01, check.describe()
        assert check.mean_abs_diff < 1e-5 and check.iou == 1.0, check.describe()
    assert check.top1_agreement == 1.0


def test_fp16_export_matches_pytorch(graphs, onnx_files) -> None:
    check = compare(graphs.saliency, onnx_files[("saliency", "fp16")], "saliency", "fp16", 224, batch=2)
    assert check.iou is not None and check.iou > FP16_MIN_IOU, check.describe()
    assert check.mean_abs_diff < 0.01, check.describe()
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
    from engine.graphs import model_graphs
    from engine.paths import DEFAULT_MODEL

    if not DEFAULT_MODEL.exists():
        pytest.skip(f"the bundled model {DEFAULT_MODEL} is not in this checkout")
    model = load_masker(DEFAULT_MODEL)
    graphs = model_graphs(model.masker, model.blackbox, name="lite0-default")
    root = tmp_path_factory.mktemp("default-exports")
    return graphs, {p: cached_onnx(graphs, "saliency", p, root=root) for p in ("fp32", "fp16")}


def test_bundled_model_exports_meet_the_targets(default_model, data_root) -> None:
    """On the trained model and real frames: FP32 max abs diff < 1e-4 over every pixel, FP16 mask IoU > 0.98."""
    from engine.build import real_images

    graphs, files = default_model
    frames = real_images(graphs.input_size)
    assert frames is not None
    fp32 = compare(graphs.saliency, files["fp32"], "saliency", "fp32", 224, images=frames)
    assert fp32.max_abs_diff < FP32_MAX_ABS and fp32.ill_conditioned < 0.001, fp32.describe()
    fp16 = compare(graphs.saliency, files["fp16"], "saliency", "fp16", 224, images=frames)
    assert fp16.mask_area is not None and fp16.mask_area > 0.05, fp16.describe()
    assert fp16.iou is not None and fp16.iou > FP16_MIN_IOU and fp16.mean_abs_diff < 0.01, fp16.describe()
