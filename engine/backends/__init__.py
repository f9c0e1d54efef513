"""Inference backends behind one interface (`engine.backends.base.Backend`), and the `auto` choice.

`auto` takes the first available of: tensorrt > torch-cuda > onnxruntime > torch-cpu, and says why. Each backend
module is imported only when asked for, so a missing optional runtime (TensorRT, onnxruntime-gpu) never breaks
`import engine`.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.backends.base import Availability, Backend
from engine.contract import BACKEND_CHOICES, BACKEND_NAMES
from engine.errors import BackendUnavailableError
from engine.runners import RUNNER_NAMES, runner_availability

# name -> (module, class); the order is the `auto` preference.
_BACKENDS: dict[str, tuple[str, str]] = {
    "tensorrt": ("engine.backends.tensorrt", "TensorRTBackend"),
    "torch-cuda": ("engine.backends.torch", "TorchCudaBackend"),
    "onnxruntime": ("engine.backends.onnxruntime", "OnnxRuntimeBackend"),
    "torch-cpu": ("engine.backends.torch", "TorchCpuBackend"),
}
TORCH_BACKEND_NAMES = tuple(_BACKENDS)  # the torch runtime's backends; OpenVINO runs only in the CPU runtime
assert [name for name in BACKEND_NAMES if name in _BACKENDS] == list(_BACKENDS), "the order of engine.contract"
CHOICES = BACKEND_CHOICES


def backend_class(name: str) -> type[Backend]:
    if name not in _BACKENDS:
        raise BackendUnavailableError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    module_name, class_name = _BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:  # an optional runtime missing at import time
        raise BackendUnavailableError(f"{name}: {error}") from error
    backend: type[Backend] = getattr(module, class_name)
    return backend


def availability(name: str) -> Availability:
    """Whether backend `name` can run here, with the reason; never raises. (OpenVINO: a CPU runner only.)"""
    if name in RUNNER_NAMES and name not in _BACKENDS:
        return Availability(*runner_availability(name))
    try:
        return backend_class(name).availability()
    except BackendUnavailableError as error:
        return Availability(False, str(error))


def select_backend(name: str = "auto") -> tuple[str, str]:
    """(backend name, why it was chosen). A named backend that cannot run raises BackendUnavailableError."""
    if name != "auto":
        status = availability(name)
        if not status.ok:
            raise BackendUnavailableError(f"the {name} backend cannot run here: {status.reason}")
        return name, f"asked for {name}: {status.reason}"
    skipped: list[str] = []
    for candidate in TORCH_BACKEND_NAMES:
        status = availability(candidate)
        if status.ok:
            why = f"{candidate}: {status.reason}"
            return candidate, "; ".join([*skipped, why]) if skipped else why
        skipped.append(f"no {candidate} ({status.reason})")
    raise BackendUnavailableError("no backend can run here: " + "; ".join(skipped))


def create_backend(name: str, graphs: Any, **options: Any) -> Backend:
    """Build backend `name` (not "auto") for `graphs` (an engine.graphs.ModelGraphs)."""
    return backend_class(name)(graphs, **options)


__all__ = [
    "Availability",
    "Backend",
    "BACKEND_NAMES",
    "CHOICES",
    "TORCH_BACKEND_NAMES",
    "availability",
    "create_backend",
    "select_backend",
]
