"""`python -m engine build MODEL`: export a model to ONNX (FP32 and FP16), check the exports against PyTorch, and
build the engine of each chosen backend, printing where every file went."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.backends import BACKEND_NAMES, availability, create_backend, select_backend
from engine.errors import ModelFileError, SaliencyError
from engine.export.cache import cached_onnx
from engine.export.check import compare
from engine.export.make import GRAPH_IO, PRECISIONS
from engine.graphs import ModelGraphs
from engine.paths import DEMO_CLIP, cache_dir, data_root
from engine.video import VideoReader


def real_images(input_size: int, count: int = 4) -> torch.Tensor | None:
    """A few frames of the shared demo video at the model's input size, or None when the data is not here."""
    for video in (DEMO_CLIP, data_root() / "videos" / "box.mp4"):
        if not video.exists():
            continue
        with VideoReader(video) as reader:
            frames = [frame for _, frame in zip(range(count * 20), reader)][::20]
        resized = [cv2.resize(frame, (input_size, input_size), interpolation=cv2.INTER_AREA) for frame in frames]
        return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255
    return None


def check_exports(graphs: ModelGraphs, root: Path | None, say: Callable[[str], None]) -> list[Path]:
    """Export (or reuse) every graph at every precision and check each against PyTorch; raise if one fails."""
    images = real_images(graphs.input_size)
    paths = []
    for precision in PRECISIONS:
        for graph in GRAPH_IO:
            path = cached_onnx(graphs, graph, precision, root)
            module = graphs.saliency if graph == "saliency" else graphs.classifier
            checks = [(compare(module, path, graph, precision, graphs.input_size), "random images")]
            if images is not None:
                checks.append(
                    (compare(module, path, graph, precision, graphs.input_size, images=images), "video frames")
                )
            for check, inputs in checks:
                say(f"  {path.name}: {check.describe()} [{inputs}]")
                if not check.passed:
                    raise ModelFileError(f"the export {path} does not match PyTorch: {check.describe()}")
            paths.append(path)
    return paths


def build(
    graphs: ModelGraphs, backends: list[str], root: Path | None, say: Callable[[str], None] = print
) -> dict[str, list[str]]:
    """Exports + checks, then each backend's engine. Returns backend -> files it uses."""
    say(f"model {graphs.name}, key {graphs.key[:16]}; cache {root or cache_dir()}")
    say("ONNX exports (checked with ONNX Runtime against PyTorch FP32):")
    exported = check_exports(graphs, root, say)
    files: dict[str, list[str]] = {"onnx": [str(path) for path in exported]}
    for name in backends:
        status = availability(name)
        if not status.ok:
            say(f"{name}: not available here ({status.reason})")
            continue
        options = {"cache_root": root} if name in ("onnxruntime", "tensorrt") else {}
        with create_backend(name, graphs, batch_sizes=(1, 8), **options) as backend:
            if name == "tensorrt":
                files[name] = list(getattr(backend, "built", [])) or ["(plans were already cached)"]
            elif name == "onnxruntime":
                files[name] = [str(cached_onnx(graphs, graph, "fp32", root)) for graph in GRAPH_IO]
            else:
                files[name] = []
            say(f"{name}: ready ({backend.describe()})")
            for path in files[name]:
                say(f"  {path}")
            if not files[name]:
                say("  nothing to build: runs the PyTorch model directly")
    return files


def resolve_backends(choice: str) -> list[str]:
    if choice == "all":
        return list(BACKEND_NAMES)
    if choice == "auto":
        return [select_backend("auto")[0]]
    if choice not in BACKEND_NAMES:
        raise SaliencyError(f"unknown backend {choice!r}; choose auto, all or one of {', '.join(BACKEND_NAMES)}")
    return [choice]
