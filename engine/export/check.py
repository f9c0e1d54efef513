"""Checking an exported ONNX graph against PyTorch FP32 (a Polygraphy-style comparator, ONNX Runtime on the CPU).

- FP32: the head channels (an extra output of a copy of the graph) and the logits within a relative tolerance, and
  every mask pixel within the bound that the channel tolerance implies for the ratio;
- FP16: IoU of the masks thresholded at 0.5 on real images whose masks have substance, else the mean abs difference.
The tolerances and their derivation: engine.tolerances.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.errors import ModelFileError
from engine.export.graphs import MaskRatio
from engine.export.make import example_feed
from engine.tolerances import (
    FP16_MAX_MEAN_ABS,
    FP16_MIN_AREA,
    FP16_MIN_IOU,
    FP32_CHANNEL_RTOL,
    FP32_LOGITS_RTOL,
    channel_rel_diff,
    mask_error_bound,
    mask_iou,
)


@dataclass
class ExportCheck:
    """How an exported graph compares with PyTorch FP32 on the same inputs (tolerances: engine.tolerances).

    FP32 gates on `channel_rel_diff` (the head channels, relative to each image's largest), `logits_rel_diff` and
    `mask_bound_used`: the largest |dM| as a fraction of its per-pixel bound (<= 1 everywhere). The mask
    M = |C0| / (|C0| + |C1| + eps) magnifies channel differences where both channels are small, so no fixed
    threshold on |dM| holds on every CPU; the bound is derived from the reference's own |C0| + |C1| there.
    FP16 gates on the IoU at 0.5 on real images whose masks have substance (>= 5% of the pixels); on near-empty
    masks a handful of pixels at the threshold decide the IoU, and on random noise the masks are undecided, so
    there it gates on the mean abs difference instead. For FP16, `mask_bound_used` is against the bound at the
    measured channel difference (the FP32 ratio on FP16 channels: <= 1 when the ratio is computed in FP32).
    """

    graph: str
    precision: str
    max_abs_diff: float  # of the mask (saliency) or the logits (classifier)
    mean_abs_diff: float
    channel_rel_diff: float | None  # max over images of max|dC| / max|C|, saliency only
    logits_rel_diff: float  # max over images of max|dz| / max|z|
    mask_bound_used: float | None  # max over pixels of |dM| / its bound, saliency only
    iou: float | None  # masks at 0.5, saliency only
    mask_area: float | None  # fraction of the reference mask >= 0.5, saliency only
    top1_agreement: float  # fraction of images where ONNX and PyTorch give the same top-1
    passed: bool

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.graph != "saliency":
            return (
                f"{self.graph} {self.precision}: logits max abs diff {self.max_abs_diff:.2e} "
                f"({self.logits_rel_diff:.1e} of the largest), top-1 agreement {self.top1_agreement:.0%} -> {verdict}"
            )
        return (
            f"{self.graph} {self.precision}: head channels {self.channel_rel_diff:.1e} of the largest, logits "
            f"{self.logits_rel_diff:.1e}; mask max abs diff {self.max_abs_diff:.2e} ({self.mask_bound_used:.2f} of "
            f"its per-pixel bound), mean {self.mean_abs_diff:.2e}, IoU@0.5 {self.iou:.4f} (mask area "
            f"{self.mask_area:.1%}), top-1 agreement {self.top1_agreement:.0%} -> {verdict}"
        )


def run_onnx(model: onnx.ModelProto | Path, feed: dict[str, torch.Tensor], threads: int = 0) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {name: tensor.numpy() for name, tensor in feed.items()})


def ratio_nodes(model: onnx.ModelProto, output: str = "mask_low") -> list[onnx.NodeProto]:
    """The nodes between the last convolution and `output`: the mask ratio (must compute in FP32)."""
    producers = {name: node for node in model.graph.node for name in node.output}
    found: list[onnx.NodeProto] = []
    pending = [output]
    seen: set[str] = set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen or node.op_type == "Conv":
            continue
        seen.add(node.name)
        found.append(node)
        pending.extend(node.input)
    return found


def with_channels_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a saliency graph with the mask ratio's input, the head channels (B, 2, h, w), as a third output."""
    slices = {node.input[0] for node in ratio_nodes(model) if node.op_type == "Slice"}
    if len(slices) != 1:
        raise ModelFileError(f"the mask ratio of this graph does not read one tensor of head channels ({slices})")
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    copied.graph.output.append(onnx.helper.make_tensor_value_info(slices.pop(), onnx.TensorProto.FLOAT, None))
    return copied


@dataclass
class Reference:
    """PyTorch FP32 outputs of a graph, and for the saliency graph its head channels and the ratio's eps."""

    outputs: list[np.ndarray]  # (mask_low, logits) or (logits,)
    channels: np.ndarray | None  # (B, 2, h, w): the input of MaskRatio
    eps: float

    def mask_bound(self, rtol: float = FP32_CHANNEL_RTOL) -> np.ndarray:
        """The per-pixel bound on |dM| of a result whose channels are within rtol (engine.tolerances)."""
        if self.channels is None:
            raise ValueError("only the saliency graph has a mask")
        return mask_error_bound(self.channels, self.eps, rtol)


def reference_outputs(module: nn.Module, feed: dict[str, torch.Tensor]) -> Reference:
    """Run `module` in FP32 PyTorch on `feed`, keeping the input of its mask ratio (the head channels)."""
    captured: list[tuple[torch.Tensor, float]] = []

    def keep_channels(ratio: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        captured.append((inputs[0].float(), float(getattr(ratio, "eps"))))  # noqa: B009 (MaskRatio's)

    hooks = [ratio.register_forward_hook(keep_channels) for ratio in module.modules() if isinstance(ratio, MaskRatio)]
    try:
        with torch.no_grad():
            expected = module.eval()(**feed)
    finally:
        for hook in hooks:
            hook.remove()
    expected_list = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    outputs = [tensor.float().numpy() for tensor in expected_list]
    if not captured:
        return Reference(outputs, None, 0.0)
    channels, eps = captured[0]
    return Reference(outputs, channels.numpy(), eps)


def compare(
    module: nn.Module,
    model: onnx.ModelProto | Path,
    graph: str,
    precision: str,
    input_size: int,
    batch: int = 2,
    images: torch.Tensor | None = None,
) -> ExportCheck:
    """Run PyTorch FP32 and the ONNX graph on the same images (random ones unless given) and compare them."""
    feed = example_feed(graph, input_size, batch)
    if images is not None:
        feed["image"] = images
        if graph == "saliency":
            feed["target"] = torch.full((images.shape[0],), -1, dtype=torch.long)
    expected = reference_outputs(module, feed)
    if graph == "saliency":
        loaded = onnx.load(str(model)) if isinstance(model, Path) else model
        mask, logits, channels = run_onnx(with_channels_output(loaded), feed)
        return _compare_saliency(expected, mask, logits, channels, precision, real_images=images is not None)
    (logits,) = run_onnx(model, feed)
    return _compare_classifier(expected, logits, precision)


def _compare_saliency(
    expected: Reference, mask: np.ndarray, logits: np.ndarray, channels: np.ndarray, precision: str, real_images: bool
) -> ExportCheck:
    assert expected.channels is not None
    reference_mask, reference_logits = expected.outputs
    difference = np.abs(mask.astype(np.float64) - reference_mask)
    channel_diff = channel_rel_diff(expected.channels, channels)
    logits_diff = channel_rel_diff(reference_logits, logits)
    # FP32: against the bound at the FP32 tolerance; FP16: at the measured channel difference (the ratio's check)
    rtol = FP32_CHANNEL_RTOL if precision == "fp32" else channel_diff
    bound_used = float((difference / expected.mask_bound(rtol)).max())
    iou = mask_iou(reference_mask, mask)
    area = float((reference_mask >= 0.5).mean())
    if precision == "fp32":
        passed = channel_diff <= FP32_CHANNEL_RTOL and bound_used <= 1.0 and logits_diff <= FP32_LOGITS_RTOL
    elif real_images and area >= FP16_MIN_AREA:  # what a user sees (engine.tolerances.FP16_MIN_IOU)
        passed = iou > FP16_MIN_IOU
    else:
        passed = float(difference.mean()) < FP16_MAX_MEAN_ABS
    return ExportCheck(
        "saliency",
        precision,
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        channel_rel_diff=channel_diff,
        logits_rel_diff=logits_diff,
        mask_bound_used=bound_used,
        iou=iou,
        mask_area=area,
        top1_agreement=float(np.mean(reference_logits.argmax(1) == logits.argmax(1))),
        passed=passed,
    )


def _compare_classifier(expected: Reference, logits: np.ndarray, precision: str) -> ExportCheck:
    (reference_logits,) = expected.outputs
    difference = np.abs(logits.astype(np.float64) - reference_logits)
    logits_diff = channel_rel_diff(reference_logits, logits)
    top1 = float(np.mean(reference_logits.argmax(1) == logits.argmax(1)))
    passed = logits_diff <= FP32_LOGITS_RTOL if precision == "fp32" else top1 == 1.0
    return ExportCheck(
        "classifier",
        precision,
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        channel_rel_diff=None,
        logits_rel_diff=logits_diff,
        mask_bound_used=None,
        iou=None,
        mask_area=None,
        top1_agreement=top1,
        passed=passed,
    )
