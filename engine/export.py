"""ONNX export of a model's two graphs (engine.graphs), FP32 and FP16, each checked against PyTorch.

FP16 follows what TensorRT 10.12+ / 11 build from (strongly typed networks, no FP16 builder flag): the graph itself
is FP16 (exported from the half model), its inputs and outputs stay FP32 (casts at the edges), and the mask ratio
|C0| / (|C0| + |C1| + eps) stays FP32 (`MaskRatio` casts the head's output to float before dividing).

Checks, with ONNX Runtime on the CPU against the FP32 PyTorch graph (Polygraphy-style comparator; the tolerances
and their derivation: engine.tolerances):
- FP32: the head channels (an extra output of a copy of the graph) and the logits within a relative tolerance, and
  every mask pixel within the bound that the channel tolerance implies for the ratio;
- FP16: IoU of the masks thresholded at 0.5 when the mask has substance, else the mean abs difference.

ONNX files are cached in `cache_dir()/onnx/<model key>/` (atomic writes; a file that does not load is re-exported).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.backends.base import ModelGraphs
from engine.errors import ModelFileError
from engine.graphs import MaskRatio, with_static_padding
from engine.paths import write_atomic
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

OPSET = 17
EXPORT_VERSION = "3"  # bump when the exported graphs change, so that caches are refreshed
PRECISIONS = ("fp32", "fp16")
GRAPH_IO = {
    "saliency": (("image", "target"), ("mask_low", "logits")),
    "classifier": (("image",), ("logits",)),
}


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


def example_feed(graph: str, input_size: int, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    feed = {"image": torch.rand(batch, 3, input_size, input_size, generator=generator)}
    if graph == "saliency":
        feed["target"] = torch.tensor([-1] + [281 + i for i in range(batch - 1)], dtype=torch.long)
    return feed


def export_fp32(module: nn.Module, graph: str, input_size: int) -> onnx.ModelProto:
    """The ONNX graph of `module` ("saliency" or "classifier") with FP32 inputs, batch dimension dynamic."""
    inputs, outputs = GRAPH_IO[graph]
    feed = example_feed(graph, input_size)
    buffer = io.BytesIO()  # the exporter writes to file-like objects too (its annotation says paths only)
    dynamic = {name: {0: "batch"} for name in (*inputs, *outputs)}
    with torch.no_grad(), warnings.catch_warnings():
        # On purpose: the TorchScript exporter needs no onnxscript and keeps node names stable. It announces its
        # own deprecation (wording varies across torch versions), and its tracer warns about the shape checks in
        # the models, which are constants for the fixed S x S input.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)  # handled below
        torch.onnx.export(
            module.eval(),
            tuple(feed[name] for name in inputs),
            buffer,  # type: ignore[arg-type]
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, stable node layout
        )
    model = onnx.load_from_string(buffer.getvalue())
    fuse_pads_into_convs(model)
    onnx.checker.check_model(model)
    return model


def fuse_pads_into_convs(model: onnx.ModelProto) -> int:
    """Fold each zero Pad with constant pads that feeds one Conv into that Conv's own (asymmetric) pads.

    The TorchScript exporter emits the static 'same' paddings as Pad nodes whose pads are computed by small
    constant subgraphs; neither ONNX Runtime's own pad fusion nor TensorRT needs a separate Pad then. Returns the
    number of Pads removed (the constant subgraphs left unused are removed too).
    """
    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {init.name: init for init in graph.initializer}
    cache: dict[str, np.ndarray | None] = {}

    def constant(name: str) -> np.ndarray | None:
        if name not in cache:
            cache[name] = _evaluate_constant(name, producers, initializers, constant)
        return cache[name]

    removed = []
    for pad in [node for node in graph.node if node.op_type == "Pad"]:
        mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
        users = consumers.get(pad.output[0], [])
        if mode != b"constant" or len(users) != 1 or users[0].op_type != "Conv" or len(pad.input) < 2:
            continue
        pads, fill = constant(pad.input[1]), constant(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else 0
        if (
            pads is None
            or fill is None
            or np.any(np.asarray(fill) != 0)
            or pads.size != 8
            or np.any(pads[[0, 1, 4, 5]])
        ):
            continue
        conv = users[0]
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        current = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
        merged = [
            current[0] + int(pads[2]),
            current[1] + int(pads[3]),
            current[2] + int(pads[6]),
            current[3] + int(pads[7]),
        ]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend([*kept, onnx.helper.make_attribute("pads", merged)])
        conv.input[0] = pad.input[0]
        removed.append(pad)
    for pad in removed:
        graph.node.remove(pad)
    _remove_dead_nodes(model)
    return len(removed)


def _evaluate_constant(
    name: str,
    producers: dict[str, onnx.NodeProto],
    initializers: dict[str, onnx.TensorProto],
    constant: Callable[[str], np.ndarray | None],
) -> np.ndarray | None:
    """The value of tensor `name` when it only depends on constants (small shape arithmetic), else None."""
    from onnx.reference import ReferenceEvaluator

    if name in initializers:
        return onnx.numpy_helper.to_array(initializers[name])
    node = producers.get(name)
    if node is None or node.op_type in ("Shape", "Size"):  # graph inputs and their shapes are not constants
        return None
    inputs = [constant(item) if item else None for item in node.input]
    if any(value is None for item, value in zip(node.input, inputs) if item):
        return None
    feeds = {item: value for item, value in zip(node.input, inputs) if item}
    outputs = ReferenceEvaluator(node).run(None, feeds)
    return np.asarray(outputs[list(node.output).index(name)])


def _remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads (after a rewrite), repeatedly."""
    graph = model.graph
    while True:
        needed = {output.name for output in graph.output} | {name for node in graph.node for name in node.input}
        dead = [node for node in graph.node if not any(output in needed for output in node.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


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


def export_graph(module: nn.Module, graph: str, input_size: int, precision: str) -> onnx.ModelProto:
    """FP32: the module as is. FP16: a half copy of it, FP32 at the inputs, outputs and in the mask ratio.
    Both with the 'same' paddings fixed for the S x S input (engine.graphs.with_static_padding)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    module = with_static_padding(module, example_feed(graph, input_size, batch=1))
    if precision == "fp16":
        from engine.backends.torch import HalfGraph

        module = HalfGraph(module)
    return export_fp32(module, graph, input_size)


# --- the comparator ----------------------------------------------------------------------------------------------


def run_onnx(model: onnx.ModelProto | Path, feed: dict[str, torch.Tensor], threads: int = 0) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {name: tensor.numpy() for name, tensor in feed.items()})


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


# --- the cache -----------------------------------------------------------------------------------------------------


def onnx_cache_path(graphs: ModelGraphs, graph: str, precision: str, root: Path | None = None) -> Path:
    from engine.paths import cache_dir

    folder = (root or cache_dir()) / "onnx" / f"{graphs.key[:24]}-v{EXPORT_VERSION}-opset{OPSET}"
    return folder / f"{graph}-{precision}.onnx"


def cached_onnx(graphs: ModelGraphs, graph: str, precision: str, root: Path | None = None) -> Path:
    """The ONNX file of `graph` at `precision`, exported on first use; a damaged cached file is re-exported."""
    path = onnx_cache_path(graphs, graph, precision, root)
    if path.exists():
        try:
            onnx.checker.check_model(str(path))
            return path
        except Exception:  # noqa: BLE001 (onnx raises several untyped errors for damaged files)
            path.unlink(missing_ok=True)  # damaged (interrupted copy, disk error): rebuild, never trust it
    module = graphs.saliency if graph == "saliency" else graphs.classifier
    model = export_graph(module, graph, graphs.input_size, precision)
    write_atomic(path, model.SerializeToString())
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_model(
    graphs: ModelGraphs, out_dir: Path, precisions: tuple[str, ...] = PRECISIONS
) -> list[tuple[Path, ExportCheck]]:
    """Export both graphs at each precision into `out_dir`, check each one; raise if a check fails."""
    results = []
    for precision in precisions:
        for graph in GRAPH_IO:
            module = graphs.saliency if graph == "saliency" else graphs.classifier
            model = export_graph(module, graph, graphs.input_size, precision)
            path = out_dir / f"{graph}-{precision}.onnx"
            write_atomic(path, model.SerializeToString())
            check = compare(module, path, graph, precision, graphs.input_size)
            if not check.passed:
                raise ModelFileError(f"the exported {path.name} does not match PyTorch: {check.describe()}")
            results.append((path, check))
    return results
