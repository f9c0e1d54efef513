"""Making the ONNX graphs of a model (engine.export.graphs): FP32, or FP16 as TensorRT 10.12+ / 11 build from.

FP16 is a strongly typed graph (no FP16 builder flag): the graph itself is FP16 (exported from the half model), its
inputs and outputs stay FP32 (casts at the edges), and the mask ratio |C0| / (|C0| + |C1| + eps) stays FP32
(`MaskRatio` casts the head's output to float before dividing). Both have the 'same' paddings fixed for the S x S
input (engine.export.graphs.with_static_padding), then folded into the convolutions (engine.export.optimise).
"""

from __future__ import annotations

import io
import warnings

import onnx
import torch
from torch import nn

from engine.export.graphs import HalfGraph, with_static_padding
from engine.export.optimise import fuse_pads_into_convs
from engine.modelfiles.export_format import OPSET

PRECISIONS = ("fp32", "fp16")
GRAPH_IO = {
    "saliency": (("image", "target"), ("mask_low", "logits")),
    "classifier": (("image",), ("logits",)),
}


def example_feed(graph: str, input_size: int, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    feed = {"image": torch.rand(batch, 3, input_size, input_size, generator=generator)}
    if graph == "saliency":
        feed["target"] = torch.tensor([-1] + [281 + i for i in range(batch - 1)], dtype=torch.long)
    return feed


def export_onnx(module: nn.Module, graph: str, input_size: int) -> onnx.ModelProto:
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


def export_graph(module: nn.Module, graph: str, input_size: int, precision: str) -> onnx.ModelProto:
    """FP32: the module as is. FP16: a half copy of it, FP32 at the inputs, outputs and in the mask ratio.
    Both with the 'same' paddings fixed for the S x S input (engine.export.graphs.with_static_padding)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    module = with_static_padding(module, example_feed(graph, input_size, batch=1))
    if precision == "fp16":
        module = HalfGraph(module)
    return export_onnx(module, graph, input_size)
