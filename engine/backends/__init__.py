"""Inference backends behind one interface (`engine.backends.base.Backend`), their registry, and the `auto` choice.

`auto` tries the registered backends in order (tensorrt > torch-cuda > onnxruntime > torch-cpu): a backend that
cannot run here is skipped with the reason, and one whose set-up fails (a parse or build error, a CUDA library that
does not load, a damaged cache) is recorded with its cause and the next one is tried: `build_backend`. Every set-up
error of a backend reaches the caller as a BackendUnavailableError whose cause is the original error. The last set-up
failure of each backend is remembered in the cache folder, so that `python -m engine info` can say it.

Each backend module is imported only when asked for, so a missing optional runtime (TensorRT, onnxruntime-gpu) never
breaks `import engine`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import time
from typing import Any

from engine.backends.base import Availability, Backend
from engine.contract import BACKEND_CHOICES, BACKEND_NAMES
from engine.errors import BackendUnavailableError
from engine.export.graphs import ModelGraphs
from engine.paths import cache_dir, write_atomic
from engine.runtime.runners import RUNNER_NAMES, runner_availability

log = logging.getLogger(__name__)

# name -> the class, or "module:Class" imported on first use; the order is the `auto` preference.
_BUILT_IN: dict[str, str] = {
    "tensorrt": "engine.backends.tensorrt:TensorRTBackend",
    "torch-cuda": "engine.backends.torch:TorchCudaBackend",
    "onnxruntime": "engine.backends.onnxruntime:OnnxRuntimeBackend",
    "torch-cpu": "engine.backends.torch:TorchCpuBackend",
}
assert [name for name in BACKEND_NAMES if name in _BUILT_IN] == list(_BUILT_IN), "the order of engine.contract"
_registry: dict[str, str | type[Backend]] = dict(_BUILT_IN)  # the torch runtime's backends (OpenVINO: CPU runtime only)
CHOICES = BACKEND_CHOICES
FAILURES_FILE = "backend-failures.json"


# --- the registry ------------------------------------------------------------------------------------------------


def register_backend(name: str, backend: str | type[Backend], *, before: str | None = None) -> None:
    """Add a backend: a Backend class, or "module:Class" imported when first asked for. `auto` tries it before
    `before` (a registered name), or after every other when None."""
    if name in ("auto", "all") or name in _registry:
        raise ValueError(f"a backend named {name!r} exists already (or is reserved)")
    if before is not None and before not in _registry:
        raise ValueError(f"cannot register {name!r} before {before!r}: no such backend")
    entries = list(_registry.items())
    position = len(entries) if before is None else [entry for entry, _ in entries].index(before)
    entries.insert(position, (name, backend))
    _registry.clear()
    _registry.update(entries)


def unregister_backend(name: str) -> None:
    """Remove a backend added with register_backend (the built-in ones stay)."""
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is a built-in backend")
    if _registry.pop(name, None) is None:
        raise ValueError(f"no backend named {name!r} is registered")


def registered_backends() -> tuple[str, ...]:
    """Every backend name, in the order `auto` tries them."""
    return tuple(_registry)


def backend_class(name: str) -> type[Backend]:
    if name not in _registry:
        raise BackendUnavailableError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    entry = _registry[name]
    if not isinstance(entry, str):
        return entry
    module_name, class_name = entry.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 (an optional runtime missing, or a library that does not load)
        raise BackendUnavailableError(f"{name}: {error}") from error
    backend: type[Backend] = getattr(module, class_name)
    return backend


# --- availability, choice and set-up ----------------------------------------------------------------------------


def availability(name: str) -> Availability:
    """Whether backend `name` can run here, with the reason; never raises. (OpenVINO: a CPU runner only.)"""
    if name in RUNNER_NAMES and name not in _registry:
        return Availability(*runner_availability(name))
    try:
        return backend_class(name).availability()
    except BackendUnavailableError as error:
        return Availability(False, str(error))
    except Exception as error:  # noqa: BLE001 (a check that should never raise did: the backend cannot run)
        return Availability(False, f"its availability check failed: {type(error).__name__}: {error}")


def select_backend(name: str = "auto") -> tuple[str, str]:
    """(backend name, why it was chosen) from availability alone, without building anything. A named backend that
    cannot run raises BackendUnavailableError. (`build_backend` also falls through backends whose set-up fails.)"""
    if name != "auto":
        status = availability(name)
        if not status.ok:
            raise BackendUnavailableError(f"the {name} backend cannot run here: {status.reason}")
        return name, f"asked for {name}: {status.reason}"
    skipped: list[str] = []
    for candidate in registered_backends():
        status = availability(candidate)
        if status.ok:
            why = f"{candidate}: {status.reason}"
            return candidate, "; ".join([*skipped, why]) if skipped else why
        skipped.append(f"no {candidate} ({status.reason})")
    raise BackendUnavailableError("no backend can run here: " + "; ".join(skipped))


def create_backend(name: str, graphs: ModelGraphs, **options: Any) -> Backend:
    """Build backend `name` (not "auto") for `graphs`. An option the backend does not take is a TypeError (a
    programming error); anything that goes wrong while setting it up is a BackendUnavailableError from the cause."""
    backend = backend_class(name)
    inspect.signature(backend).bind(graphs, **options)  # TypeError for an option it does not take
    try:
        return backend(graphs, **options)
    except BackendUnavailableError:
        raise
    except Exception as error:  # noqa: BLE001 (every runtime fails in its own way: say it as ours, keep the cause)
        raise BackendUnavailableError(f"{name}: {type(error).__name__}: {error}") from error


def build_backend(choice: str, graphs: ModelGraphs, **options: Any) -> tuple[Backend, str, str]:
    """(backend, its name, why) for `choice`: "auto" or a backend name.

    "auto" tries every registered backend in order: one that cannot run here is skipped ("no tensorrt (...)"), one
    whose set-up fails is recorded ("tensorrt failed: <cause>") and the next is tried; the first that builds is
    returned, with every skipped and failed one in the reason. A named backend that cannot run or fails to set up
    raises BackendUnavailableError (from the cause). Options go to each backend that takes them (threads to the CPU
    backends, cache_root to onnxruntime and tensorrt, batch_sizes to all); an option no backend takes is a TypeError.
    """
    _check_options(options)
    if choice != "auto":
        name, reason = select_backend(choice)
        return _set_up(name, graphs, options), name, reason
    notes: list[str] = []
    for name in registered_backends():
        status = availability(name)
        if not status.ok:
            notes.append(f"no {name} ({status.reason})")
            continue
        try:
            backend = _set_up(name, graphs, options)
        except BackendUnavailableError as error:
            log.warning("the %s backend failed to set up, trying the next one: %s", name, error)
            notes.append(f"{name} failed: {str(error).removeprefix(f'{name}: ')}")
            continue
        return backend, name, "; ".join([*notes, f"{name}: {status.reason}"])
    raise BackendUnavailableError("no backend could be set up here: " + "; ".join(notes))


def _set_up(name: str, graphs: ModelGraphs, options: dict[str, Any]) -> Backend:
    """Build one backend with the options it takes, remembering a failure (or forgetting an old one)."""
    try:
        backend = create_backend(name, graphs, **_options_taken(name, options))
    except BackendUnavailableError as error:
        _remember_failure(name, str(error))
        raise
    _remember_failure(name, None)
    return backend


def _parameters(name: str) -> set[str] | None:
    """The options backend `name` takes (None: any, it has **options; an empty set when it does not import)."""
    try:
        parameters = inspect.signature(backend_class(name)).parameters.values()
    except BackendUnavailableError:
        return set()
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return {parameter.name for parameter in parameters} - {"graphs"}


def _options_taken(name: str, options: dict[str, Any]) -> dict[str, Any]:
    taken = _parameters(name)
    return dict(options) if taken is None else {key: value for key, value in options.items() if key in taken}


def _check_options(options: dict[str, Any]) -> None:
    known: set[str] = set()
    for name in registered_backends():
        taken = _parameters(name)
        if taken is None:
            return
        known |= taken
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"no backend takes the option(s) {unknown}; options: {', '.join(sorted(known))}")


# --- remembered set-up failures (for `python -m engine info`) ------------------------------------------------------


def recorded_failures() -> dict[str, dict[str, str]]:
    """backend -> {"reason", "when"} of its last set-up failure, as remembered in the cache folder."""
    try:
        records = json.loads((cache_dir() / FAILURES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _remember_failure(name: str, reason: str | None) -> None:
    records = recorded_failures()
    if reason is None and name not in records:
        return
    if reason is None:
        records.pop(name)
    else:
        records[name] = {"reason": reason, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        write_atomic(cache_dir() / FAILURES_FILE, (json.dumps(records, indent=2) + "\n").encode())
    except OSError as error:  # a read-only cache must not turn a working backend into a failing one
        log.warning("cannot remember backend failures in %s: %s", cache_dir(), error)


def backend_report() -> list[str]:
    """What `python -m engine info` says about the backends: availability, last set-up failure, what auto does."""
    failures = recorded_failures()
    lines = ["backends (auto tries them in this order and takes the first that sets up):"]
    for name in registered_backends():
        status = availability(name)
        lines.append(f"  {name:<12} {'yes' if status.ok else 'no '}  {status.reason}")
        if name in failures:
            record = failures[name]
            lines.append(f"  {'':<12}      last set-up failed ({record.get('when', '?')}): {record.get('reason', '?')}")
    try:
        lines.append(f"auto: {select_backend('auto')[0]} first (the next one if its set-up fails)")
    except BackendUnavailableError as error:
        lines.append(f"auto: {error}")
    return lines


__all__ = [
    "Availability",
    "Backend",
    "BACKEND_NAMES",
    "CHOICES",
    "availability",
    "backend_report",
    "build_backend",
    "create_backend",
    "recorded_failures",
    "register_backend",
    "registered_backends",
    "select_backend",
    "unregister_backend",
]
