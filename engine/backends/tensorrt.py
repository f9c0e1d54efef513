"""TensorRT backend: FP16 plans built from the FP16 ONNX export, cached per model, GPU, TensorRT and CUDA build.

Written against the TensorRT 10.x / 11.x Python API (type-checked against tensorrt-stubs in `make test`; TensorRT
cannot be installed on our development and CI machines, so this module has not been run there):
- the network is strongly typed (NetworkDefinitionCreationFlag.STRONGLY_TYPED: required on 10.x, the default on 11.x),
  parsed from the FP16 ONNX, whose types decide the precision (the mask ratio is FP32 in the graph);
- one optimisation profile per graph whatever batch sizes a caller asks for (min 1, opt 1, max MAX_FRAMES frames),
  so `engine build`, `engine bench` and the app use the same plan: a pre-built plan is never built again;
- plans are cached in `cache_dir()/tensorrt/` (engine/backends/tensorrt_cache.py), keyed by the ONNX hash, the
  TensorRT version and the CUDA major it was built for, PyTorch's CUDA version, the GPU name and compute capability,
  precision and shapes (JSON card beside each plan); a plan that does not deserialise is rebuilt;
- the timing cache is read and written under a file lock; one TensorRT cannot read (damaged, or from another build)
  is dropped and the build starts from an empty one;
- one TensorRT logger and one runtime per process (TensorRT warns when builder and runtime get different loggers);
- I/O buffers are torch CUDA tensors allocated once; each plan enqueues on its own CUDA stream (TensorRT adds
  device-wide synchronisation on the legacy default stream), ordered against torch's current stream with two CUDA
  events: TensorRT starts after the inputs written on torch's stream, torch reads the outputs after TensorRT wrote them.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

from engine.backends.base import DEFAULT_BATCH_SIZES, Availability, Backend, check_graph
from engine.backends.tensorrt_cache import (
    PRECISION,
    Environment,
    Shapes,
    attach_timing_cache,
    check_batch_sizes,
    load_or_build,
    plan_keys,
    store_timing_cache,
    timing_cache_path,
)
from engine.errors import BackendUnavailableError
from engine.export.cache import onnx_cache_path
from engine.export.graphs import ModelGraphs
from engine.paths import cache_dir

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)
Engine = TypeVar("Engine")
WORKSPACE_BYTES = 1 << 30


def require_tensorrt() -> str:
    """The TensorRT version, or BackendUnavailableError saying why it cannot be used."""
    try:
        import tensorrt
    except Exception as error:  # noqa: BLE001 (ImportError, or OSError when a CUDA library it links is missing)
        raise BackendUnavailableError(
            f"TensorRT is not installed or does not load (pip install '.[{tensorrt_extra(torch.version.cuda)}]'): "
            f"{error}"
        ) from error
    if not hasattr(tensorrt, "Builder"):  # e.g. only the type stubs: `tensorrt` is then an empty namespace package
        raise BackendUnavailableError("TensorRT is not installed (the 'tensorrt' found here has no runtime)")
    return str(tensorrt.__version__)


# --- what a plan depends on (pure Python: tested without TensorRT) --------------------------------------------------


def cuda_variant(distribution_names: Iterable[str]) -> str:
    """The CUDA major a TensorRT wheel was built for, from its distribution names ('tensorrt_cu13' -> '13');
    '' when they do not say (TensorRT from a tarball or a container, or only the type stubs)."""
    majors = {match.group(1) for name in distribution_names if (match := re.search(r"cu(\d+)", name))}
    return majors.pop() if len(majors) == 1 else ""


def installed_tensorrt_cuda(distributions: Mapping[str, list[str]] | None = None) -> str:
    """The CUDA major of the installed TensorRT wheels (tensorrt-cu12 or tensorrt-cu13), '' when unknown."""
    if distributions is None:
        from importlib.metadata import packages_distributions

        distributions = packages_distributions()
    modules = ("tensorrt", "tensorrt_bindings", "tensorrt_libs")
    return cuda_variant(name for module in modules for name in distributions.get(module, []))


def current_environment(device: torch.device) -> Environment:
    import tensorrt as trt

    capability = "".join(str(part) for part in torch.cuda.get_device_capability(device))
    return Environment(
        trt.__version__,
        installed_tensorrt_cuda(),
        str(torch.version.cuda),
        torch.cuda.get_device_name(device),
        capability,
    )


# --- building and running (TensorRT) ----------------------------------------------------------------------------


@functools.cache
def shared_logger() -> trt.ILogger:
    """One logger for every builder, parser and runtime of the process (TensorRT keeps the first one it is given)."""
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


@functools.cache
def shared_runtime() -> trt.Runtime:
    """The process's TensorRT runtime; raises (TypeError from the bindings) when TensorRT cannot start CUDA."""
    import tensorrt as trt

    return trt.Runtime(shared_logger())


def build_plan(onnx_path: Path, shapes: Shapes, timing_cache: Path) -> bytes:
    """A serialized plan: strongly typed network from the ONNX file, one optimisation profile, shared timing cache."""
    import tensorrt as trt

    builder: trt.Builder = trt.Builder(shared_logger())
    network: trt.INetworkDefinition = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser: trt.OnnxParser = trt.OnnxParser(network, shared_logger())
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config: trt.IBuilderConfig = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile: trt.IOptimizationProfile = builder.create_optimization_profile()
    for name, low, best, high in shapes:
        profile.set_shape(name, trt.Dims(list(low)), trt.Dims(list(best)), trt.Dims(list(high)))
    config.add_optimization_profile(profile)
    cache = attach_timing_cache(config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build {onnx_path.name} (see the TensorRT log above)")
    store_timing_cache(config, cache, timing_cache)
    return bytes(memoryview(serialized))


def _as_list(dims: trt.Dims) -> list[int]:
    return [dims[axis] for axis in range(len(dims))]


class _Plan:
    """One deserialised engine with its context, its CUDA stream and I/O buffers (torch tensors, allocated once)."""

    def __init__(self, graph: str, engine: trt.ICudaEngine, device: torch.device) -> None:
        import tensorrt as trt

        self.graph = graph
        self.device = device
        self.engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise BackendUnavailableError("TensorRT could not create an execution context (out of GPU memory?)")
        self.context: trt.IExecutionContext = context
        dtypes = {
            trt.DataType.FLOAT: torch.float32,
            trt.DataType.HALF: torch.float16,
            trt.DataType.INT64: torch.int64,
            trt.DataType.INT32: torch.int32,
        }
        names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
        self.inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
        self.outputs = [name for name in names if name not in self.inputs]
        self.max_batch = _as_list(engine.get_tensor_profile_shape(self.inputs[0], 0)[2])[0]
        self.buffers: dict[str, torch.Tensor] = {}
        for name in names:
            if name in self.inputs:  # the profile's largest shape
                shape = _as_list(engine.get_tensor_profile_shape(name, 0)[2])
            else:  # the batch dimension is -1 in the engine
                shape = [self.max_batch, *_as_list(engine.get_tensor_shape(name))[1:]]
            self.buffers[name] = torch.empty(shape, dtype=dtypes[engine.get_tensor_dtype(name)], device=device)
        for name, buffer in self.buffers.items():
            if not self.context.set_tensor_address(name, buffer.data_ptr()):
                raise BackendUnavailableError(
                    f"TensorRT refused the buffer of the {graph} plan's tensor {name!r} "
                    f"(shape {tuple(buffer.shape)}, {buffer.dtype})"
                )
        # TensorRT's own stream, and the two events that order it against whatever stream torch is using
        self.stream = torch.cuda.Stream(device=device)
        self.inputs_ready = torch.cuda.Event()
        self.outputs_ready = torch.cuda.Event()

    def __call__(self, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = feed["image"].shape[0]
        if batch > self.max_batch:
            raise BackendUnavailableError(
                f"a batch of {batch} exceeds the {self.graph} plan's optimisation profile (at most {self.max_batch})"
            )
        caller = torch.cuda.current_stream(self.device)
        for name in self.inputs:
            staged = self.buffers[name][:batch]
            staged.copy_(feed[name])  # on torch's stream, after whatever produced the feed there
            if not self.context.set_input_shape(name, tuple(staged.shape)):
                raise BackendUnavailableError(
                    f"TensorRT refused the shape {tuple(staged.shape)} for the {self.graph} plan's input {name!r}"
                )
        self.inputs_ready.record(caller)
        self.stream.wait_event(self.inputs_ready)  # TensorRT reads the inputs only once torch has written them
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise BackendUnavailableError(f"TensorRT could not run the {self.graph} plan (see the TensorRT log above)")
        self.outputs_ready.record(self.stream)
        caller.wait_event(self.outputs_ready)  # torch reads the outputs (and rewrites the inputs) only after TensorRT
        return {name: self.buffers[name][:batch].float().clone() for name in self.outputs}

    def close(self) -> None:
        self.stream.synchronize()


class TensorRTBackend(Backend):
    """FP16 TensorRT plans of both graphs, each on its own CUDA stream ordered against torch's current stream."""

    name = "tensorrt"

    def __init__(
        self,
        graphs: ModelGraphs,
        batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
        cache_root: Path | None = None,
    ) -> None:
        super().__init__(graphs, batch_sizes)
        available = self.availability()
        if not available.ok:
            raise BackendUnavailableError(f"tensorrt: {available.reason}")
        check_batch_sizes(self.batch_sizes)
        root = cache_root or cache_dir()
        self.device = torch.device("cuda", torch.cuda.current_device())
        self.environment = current_environment(self.device)
        runtime = shared_runtime()
        timing_cache = timing_cache_path(root, self.environment)
        self.plans: dict[str, _Plan] = {}
        self.plan_paths: list[str] = []
        self.built: list[str] = []
        for graph, key in plan_keys(graphs, self.environment, root).items():
            onnx_path = onnx_cache_path(graphs, graph, PRECISION, root)
            engine, built = load_or_build(
                key,
                root,
                deserialize=runtime.deserialize_cuda_engine,
                build=partial(build_plan, onnx_path, key.shapes, timing_cache),
            )
            self.plan_paths.append(str(key.plan_path(root)))
            if built:
                self.built.append(str(key.plan_path(root)))
            self.plans[graph] = _Plan(graph, engine, self.device)

    @classmethod
    def availability(cls) -> Availability:
        try:
            version = require_tensorrt()
        except BackendUnavailableError as error:
            return Availability(False, str(error))
        if not torch.cuda.is_available():
            return Availability(False, f"TensorRT {version} is installed but PyTorch sees no NVIDIA GPU")
        tensorrt_cuda = installed_tensorrt_cuda()
        built_for = _cuda_text(tensorrt_cuda, torch.version.cuda)
        try:
            shared_runtime()
        except Exception as error:  # noqa: BLE001 (a runtime that cannot start CUDA is a TypeError from pybind11)
            why = f"TensorRT {version} ({built_for}) cannot start: {type(error).__name__}: {error}"
            return Availability(False, why + variant_hint(tensorrt_cuda, torch.version.cuda))
        return Availability(True, f"TensorRT {version} ({built_for}) FP16 on {torch.cuda.get_device_name()}")

    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_graph(graph)
        return self.plans[graph](feed)

    def describe(self) -> str:
        environment = self.environment
        return (
            f"tensorrt {environment.tensorrt_version} FP16 (strongly typed plans, "
            f"{_cuda_text(environment.tensorrt_cuda, environment.torch_cuda)}, a CUDA stream per plan)"
        )

    def close(self) -> None:
        for plan in self.plans.values():
            plan.close()
        self.plans.clear()


def _cuda_text(tensorrt_cuda: str, torch_cuda: str | None) -> str:
    tensorrt_part = f"CUDA {tensorrt_cuda} build" if tensorrt_cuda else "CUDA build unknown"
    return f"{tensorrt_part}; PyTorch CUDA {torch_cuda}"


def tensorrt_extra(torch_cuda: str | None) -> str:
    """The project's extra with the TensorRT wheel for PyTorch's CUDA: `tensorrt` (CUDA 13) or `tensorrt-cu12`."""
    return "tensorrt-cu12" if (torch_cuda or "").startswith("12.") else "tensorrt"


def variant_hint(tensorrt_cuda: str, torch_cuda: str | None) -> str:
    """What to install when TensorRT's CUDA build is not PyTorch's (the driver may support only the older one)."""
    torch_major = (torch_cuda or "").split(".")[0]
    if tensorrt_cuda and torch_major and tensorrt_cuda != torch_major:
        return (
            f"; this TensorRT is the CUDA {tensorrt_cuda} build and PyTorch the CUDA {torch_major} one: "
            f"pip install tensorrt-cu{torch_major}"
        )
    return ""
