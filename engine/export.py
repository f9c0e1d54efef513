"""ONNX export of a model's two graphs (engine.graphs), FP32 and FP16, each checked against PyTorch.

FP16 follows what TensorRT 10.12+ / 11 build from (strongly typed networks, no FP16 builder flag): the graph itself
is FP16 (exported from the half model), its inputs and outputs stay FP32 (casts at the edges), and the mask ratio
|C0| / (|C0| + |C1| + eps) stays FP32 (`MaskRatio` casts the head's output to float before dividing).

Checks, with ONNX Runtime on the CPU against the FP32 PyTorch graph (Polygraphy-style comparator):
- FP32: max abs difference of the mask and of the logits (pass: < 1e-4 on the mask);
- FP16: IoU of the masks thresholded at 0.5 (pass: > 0.98) and mean abs difference.

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

OPSET = 17
EXPORT_VERSION = "3"  # bump when the exported graphs change, so that caches are refreshed
PRECISIONS = ("fp32", "fp16")
GRAPH_IO = {
    "saliency": (("image", "target"), ("mask_low", "logits")),
    "classifier": (("image",), ("logits",)),
}
FP32_MAX_ABS = 1e-4
FP16_MIN_IOU = 0.98
FP16_MIN_AREA = 0.05  # below this mask area, IoU is decided by a few threshold pixels
FP16_MAX_MEAN_ABS = 0.01


@dataclass
class ExportCheck:
    """How an exported graph compares with PyTorch FP32 on the same inputs.

    The mask is M = |C0| / (|C0| + |C1| + eps): where both head channels are close to zero, a 1e-5 difference in
    them (normal between two FP32 libraries) moves M by far more. `max_abs_diff` is over all pixels;
    `conditioned_max_abs_diff` leaves out the pixels whose |C0| + |C1| is below 5% of its median (their share is
    `ill_conditioned`), and is what the FP32 check gates on. The FP16 check gates on the IoU at 0.5 when the
    masks have substance (>= 5% of the pixels); on near-empty masks (a trained model on random noise) a handful of
    pixels at the threshold decide the IoU, so there it gates on the mean abs difference instead.
    """

    graph: str
    precision: str
    max_abs_diff: float  # of the mask (saliency) or the logits (classifier)
    mean_abs_diff: float
    conditioned_max_abs_diff: float
    ill_conditioned: float  # fraction of mask pixels left out of conditioned_max_abs_diff
    iou: float | None  # masks at 0.5, saliency only
    mask_area: float | None  # fraction of the reference mask >= 0.5, saliency only
    top1_agreement: float  # fraction of images where ONNX and PyTorch give the same top-1
    passed: bool

    def describe(self) -> str:
        iou = f", mask IoU@0.5 {self.iou:.4f} (mask area {self.mask_area:.1%})" if self.iou is not None else ""
        conditioned = (
            f" ({self.conditioned_max_abs_diff:.2e} without the {self.ill_conditioned:.2%} ill-conditioned pixels)"
            if self.graph == "saliency"
            else ""
        )
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.graph} {self.precision}: max abs diff {self.max_abs_diff:.2e}{conditioned}, mean abs diff "
            f"{self.mean_abs_diff:.2e}{iou}, top-1 agreement {self.top1_agreement:.0%} -> {verdict}"
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
    expected_np, denominator = reference_outputs(module, feed)
    actual = run_onnx(model, feed)
    reference, result = expected_np[0], actual[0]  # mask_low (saliency) or logits (classifier)
    difference = np.abs(reference - result)
    well_conditioned = np.ones_like(difference, dtype=bool)
    if graph == "saliency" and denominator is not None:
        well_conditioned = conditioned_pixels(denominator)
    conditioned_max = float(difference[well_conditioned].max()) if well_conditioned.any() else 0.0
    top1 = float(np.mean(expected_np[-1].argmax(1) == actual[-1].argmax(1)))
    iou = mask_iou(reference, result) if graph == "saliency" else None
    area = float((reference >= 0.5).mean()) if graph == "saliency" else None
    if precision == "fp32":
        passed = conditioned_max < (FP32_MAX_ABS if graph == "saliency" else 1e-3)
    elif iou is None:
        passed = top1 == 1.0
    elif area is not None and area >= FP16_MIN_AREA:
        passed = iou > FP16_MIN_IOU
    else:
        passed = float(difference.mean()) < FP16_MAX_MEAN_ABS
    return ExportCheck(
        graph,
        precision,
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        conditioned_max_abs_diff=conditioned_max,
        ill_conditioned=float(1 - well_conditioned.mean()),
        iou=iou,
        mask_area=area,
        top1_agreement=top1,
        passed=passed,
    )


def reference_outputs(module: nn.Module, feed: dict[str, torch.Tensor]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """PyTorch FP32 outputs of `module`, and |C0| + |C1| of its mask ratio (None for the classifier)."""
    denominators: list[torch.Tensor] = []

    def keep_denominator(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        denominators.append(inputs[0].float().abs().sum(1, keepdim=True))

    hooks = [
        ratio.register_forward_hook(keep_denominator) for ratio in module.modules() if isinstance(ratio, MaskRatio)
    ]
    try:
        with torch.no_grad():
            expected = module.eval()(**feed)
    finally:
        for hook in hooks:
            hook.remove()
    expected_list = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    outputs = [tensor.float().numpy() for tensor in expected_list]
    return outputs, (denominators[0].numpy() if denominators else None)


def conditioned_pixels(denominator: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Pixels where |C0| + |C1| is at least `fraction` of its median: there M is stable to small differences."""
    return denominator >= fraction * np.median(denominator)


def mask_iou(first: np.ndarray, second: np.ndarray, threshold: float = 0.5) -> float:
    a, b = first >= threshold, second >= threshold
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


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
