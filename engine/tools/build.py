"""`python -m engine build MODEL`: export a model to ONNX (FP32 and FP16), check the exports against PyTorch, and
build the engine of each chosen backend, printing where every file went."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.backends import BACKEND_NAMES, Backend, availability, build_backend
from engine.backends.base import DEFAULT_BATCH_SIZES
from engine.errors import BackendUnavailableError, ModelFileError, SaliencyError
from engine.export.cache import cached_onnx
from engine.export.check import compare
from engine.export.graphs import ModelGraphs
from engine.export.make import GRAPH_IO, PRECISIONS
from engine.paths import DEMO_CLIP, cache_dir, data_root
from engine.runtime.runners import create_runner
from engine.video.reader import VideoReader


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
    """Exports + checks, then each backend's engine ("auto": the first that sets up, as the app does). Returns
    backend -> files it uses. A backend that fails to set up does not stop the others; the failures are raised
    together at the end (SaliencyError)."""
    say(f"model {graphs.name}, key {graphs.key[:16]}; cache {root or cache_dir()}")
    say("ONNX exports (checked with ONNX Runtime against PyTorch FP32):")
    exported = check_exports(graphs, root, say)
    files: dict[str, list[str]] = {"onnx": [str(path) for path in exported]}
    failures: list[str] = []
    for choice in backends:
        if choice != "auto" and not (status := availability(choice)).ok:
            say(f"{choice}: not available here ({status.reason})")
            continue
        if choice == "openvino":  # a CPU runner over the FP32 exports: building is loading them once
            paths = {graph: cached_onnx(graphs, graph, "fp32", root) for graph in GRAPH_IO}
            with create_runner(choice, paths) as runner:
                files[choice] = [str(path) for path in paths.values()]
                say(f"{choice}: ready ({runner.describe()})")
            continue
        try:
            backend, name, reason = build_backend(choice, graphs, batch_sizes=DEFAULT_BATCH_SIZES, cache_root=root)
        except BackendUnavailableError as error:
            say(f"{choice}: FAILED: {error}")
            failures.append(f"{choice}: {error}")
            continue
        with backend:
            files[name] = _files_used(backend, graphs, root)
            say(f"{name}: ready ({backend.describe()})" + (f"; {reason}" if choice == "auto" else ""))
            for path in files[name]:
                say(f"  {path}")
            if not files[name]:
                say("  nothing to build: runs the PyTorch model directly")
    if failures:
        raise SaliencyError("these backends failed to set up: " + " | ".join(failures))
    return files


def _files_used(backend: Backend, graphs: ModelGraphs, root: Path | None) -> list[str]:
    """The files a backend runs from: TensorRT's plans (built now or found in the cache, the ones the app and the
    benchmark use too), onnxruntime's FP32 exports, nothing for PyTorch."""
    if backend.name == "tensorrt":
        built = set(getattr(backend, "built", []))
        return [f"{path} ({'built now' if path in built else 'cached'})" for path in getattr(backend, "plan_paths", [])]
    if backend.name == "onnxruntime":
        return [str(cached_onnx(graphs, graph, "fp32", root)) for graph in GRAPH_IO]
    return []


def resolve_backends(choice: str) -> list[str]:
    """The backends `engine build --backend CHOICE` builds; a named one that cannot run here is an error at once
    (before minutes of exports), "all" skips those that cannot run, "auto" is resolved while building."""
    if choice == "all":
        return list(BACKEND_NAMES)
    if choice == "auto":
        return ["auto"]
    if choice not in BACKEND_NAMES:
        raise SaliencyError(f"unknown backend {choice!r}; choose auto, all or one of {', '.join(BACKEND_NAMES)}")
    status = availability(choice)
    if not status.ok:
        raise BackendUnavailableError(f"the {choice} backend cannot run here: {status.reason}")
    return [choice]
