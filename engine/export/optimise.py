"""Optimising an exported ONNX graph: 'same' paddings folded into their convolutions, dead nodes removed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx


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
    from onnx.reference import ReferenceEvaluator  # 0.6 s to import: only when a graph is made

    if name in initializers:
        return onnx.numpy_helper.to_array(initializers[name])
    node = producers.get(name)
    if node is None or node.op_type in ("Shape", "Size"):  # graph inputs and their shapes are not constants
        return None
    inputs = [constant(item) if item else None for item in node.input]
    if any(value is None for item, value in zip(node.input, inputs) if item):
        return None
    feeds = {item: value for item, value in zip(node.input, inputs) if item}
    outputs = ReferenceEvaluator(node).run([name], feeds)
    assert isinstance(outputs, list)  # a dict only for intermediate=True
    return np.asarray(outputs[0])


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
