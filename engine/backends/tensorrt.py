"""TensorRT backend: FP16 plans built from the FP16 ONNX export, cached per model, GPU, TensorRT and CUDA build.

Written against the TensorRT 10.x / 11.x Python API (type-checked against tensorrt-stubs in `make test`; TensorRT
cannot be installed on our development and CI machines, so this module has not been run there):
- the network is strongly typed (NetworkDefinitionCreationFlag.STRONGLY_TYPED: required on 10.x, the default on 11.x),
  parsed from the FP16 ONNX, whose types decide the precision (the mask ratio is FP32 in the graph);
- one optimisation profile per graph whatever batch sizes a caller asks for (min 1, opt 1, max MAX_FRAMES frames), so
  `engine build`, `engine bench` and the app use the same plan: a pre-built plan is never built again;
- plans are cached in `cache_dir()/tensorrt/`, keyed by the ONNX hash, the TensorRT version and the CUDA major it was
  built for, PyTorch's CUDA version, the GPU name and compute capability, precision and shapes (JSON card beside each
  plan); a plan that does not deserialise is rebuilt;
- the timing cache is read and written under a file lock; one TensorRT cannot read (damaged, or from another build)
  is dropped and the build starts from an empty one;
- one TensorRT logger and one runtime per process (TensorRT warns when builder and runtime get different loggers);
- I/O buffers are torch CUDA tensors allocated once; each plan enqueues on its own CUDA stream (TensorRT adds
  device-wide synchronisation on the legacy default stream), ordered against torch's current stream with two CUDA
  events: TensorRT starts after the inputs written on torch's stream, torch reads the outputs after TensorRT wrote them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import torch
from typing_extensions import Buffer, Self

from engine.backends.base import DEFAULT_BATCH_SIZES, Availability, Backend, check_graph
from engine.errors import BackendUnavailableError
from engine.export.cache import cached_onnx, file_sha256, onnx_cache_path
from engine.graphs import ModelGraphs
from engine.paths import cache_dir, write_atomic

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)
Engine = TypeVar("Engine")
PRECISION = "fp16"
WORKSPACE_BYTES = 1 << 30
# The largest saliency batch a plan takes. The app explains one frame at a time, `engine bench` and `engine render`
# run 8; 16 leaves room for `render --batch 16`. Activations at 224 x 224 in FP16 stay small at 16 (tens of MB), and
# TensorRT picks its kernels for the opt shape, 1: the live app's latency is what the plan is tuned for.
MAX_FRAMES = 16
# The classifier graph runs the evidence check: the preserved and the destroyed image of every frame, 2 per frame.
IMAGES_PER_FRAME = {"saliency": 1, "classifier": 2}
Shapes = tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (input, min, opt, max)


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


@dataclass(frozen=True)
class Environment:
    """The machine side of a plan's key: a plan built under one of these does not run (well) under another."""

    tensorrt_version: str
    tensorrt_cuda: str  # the CUDA major TensorRT's wheel was built for ("12", "13"; "" when unknown)
    torch_cuda: str  # torch.version.cuda, e.g. "13.0"
    gpu_name: str
    compute_capability: str  # e.g. "90"


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


@dataclass(frozen=True)
class PlanKey:
    """Everything a plan depends on: change any of it and the plan is rebuilt."""

    graph: str
    onnx_sha256: str
    environment: Environment
    precision: str
    shapes: Shapes

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def plan_path(self, root: Path) -> Path:
        return root / "tensorrt" / f"{self.graph}-{self.precision}-{self.digest()[:32]}.plan"


def profile_shapes(graph: str, input_size: int) -> Shapes:
    """(input, min, opt, max) per input: batches 1..MAX_FRAMES frames, tuned for 1, whatever a caller runs."""
    high = MAX_FRAMES * IMAGES_PER_FRAME[graph]
    image = ("image", (1, 3, input_size, input_size), (1, 3, input_size, input_size), (high, 3, input_size, input_size))
    if graph == "classifier":
        return (image,)
    return (image, ("target", (1,), (1,), (high,)))


def check_batch_sizes(batch_sizes: Iterable[int]) -> None:
    """Batch sizes (frames) the plans can run: 1..MAX_FRAMES. They do not enter the plans' keys."""
    too_large = sorted(batch for batch in batch_sizes if not 1 <= batch <= MAX_FRAMES)
    if too_large:
        raise BackendUnavailableError(
            f"the TensorRT plans take 1 to {MAX_FRAMES} frames per batch, not {too_large[-1]}: use a batch of at "
            f"most {MAX_FRAMES}"
        )


def plan_keys(graphs: ModelGraphs, environment: Environment, root: Path) -> dict[str, PlanKey]:
    """The key of each graph's plan (exporting the FP16 ONNX on first use). The same for every batch size asked for,
    so `engine build`, `engine bench` and the app share one plan per graph."""
    keys = {}
    for graph in IMAGES_PER_FRAME:
        onnx_path = cached_onnx(graphs, graph, PRECISION, root)
        shapes = profile_shapes(graph, graphs.input_size)
        keys[graph] = PlanKey(graph, file_sha256(onnx_path), environment, PRECISION, shapes)
    return keys


def load_or_build(
    key: PlanKey,
    root: Path,
    deserialize: Callable[[bytes], Engine | None],
    build: Callable[[], bytes],
) -> tuple[Engine, bool]:
    """(engine, whether it was built now). A cached plan that fails to deserialise is deleted and rebuilt."""
    path = key.plan_path(root)
    if path.exists():
        engine: Engine | None
        try:
            engine = deserialize(path.read_bytes())
        except Exception as error:  # noqa: BLE001 (any failure means: do not trust this file)
            log.warning("cached plan %s failed to load (%s)", path, error)
            engine = None
        if engine is not None:
            return engine, False
        log.warning("rebuilding the TensorRT plan %s (the cached one does not deserialise)", path.name)
        path.unlink(missing_ok=True)
    plan = build()
    try:
        engine = deserialize(plan)
    except Exception as error:  # noqa: BLE001
        raise BackendUnavailableError(
            f"TensorRT built a plan for {key.graph} that it cannot deserialise: {error}"
        ) from error
    if engine is None:
        raise BackendUnavailableError(f"TensorRT built a plan for {key.graph} that it cannot deserialise")
    write_atomic(path, plan)
    write_atomic(path.with_suffix(".json"), (json.dumps(asdict(key), indent=2) + "\n").encode())
    return engine, True


def timing_cache_path(root: Path, environment: Environment) -> Path:
    gpu = "".join(c if c.isalnum() else "-" for c in environment.gpu_name)
    cuda = f"cu{environment.tensorrt_cuda}" if environment.tensorrt_cuda else "cu-unknown"
    name = f"timing-{environment.tensorrt_version}-{cuda}-{gpu}-sm{environment.compute_capability}.cache"
    return root / "tensorrt" / name


# --- the timing cache: what to do with TensorRT's answers (the decisions are tested with a stand-in config) ---------


class TimingCache(Protocol):
    def combine(self, input_cache: Self, ignore_mismatch: bool) -> bool: ...

    def serialize(self) -> Buffer: ...


Cache = TypeVar("Cache", bound=TimingCache)


class TimingCacheConfig(Protocol, Generic[Cache]):
    """The part of trt.IBuilderConfig the timing cache uses. TensorRT answers None / False on failure."""

    def create_timing_cache(self, serialized_timing_cache: bytes) -> Cache | None: ...

    def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool: ...


def _create(config: TimingCacheConfig[Cache], data: bytes) -> Cache | None:
    try:
        return config.create_timing_cache(data)
    except Exception as error:  # noqa: BLE001 (the bindings may raise instead of returning None)
        log.warning("TensorRT cannot read a timing cache: %s", error)
        return None


def attach_timing_cache(config: TimingCacheConfig[Cache], path: Path) -> Cache:
    """Give `config` the shared timing cache in `path`. A file TensorRT cannot read or will not take (damaged, from
    another TensorRT or GPU) is deleted, and the build starts from an empty cache."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        data = path.read_bytes() if path.exists() else b""
        if data:
            cache = _create(config, data)
            if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                return cache
            log.warning("dropping the timing cache %s: TensorRT cannot use it; starting from an empty one", path)
            path.unlink(missing_ok=True)
    empty = _create(config, b"")
    if empty is None or not config.set_timing_cache(empty, ignore_mismatch=False):
        raise BackendUnavailableError("TensorRT cannot create an empty timing cache (see the TensorRT log above)")
    return empty


def store_timing_cache(config: TimingCacheConfig[Cache], cache: Cache, path: Path) -> None:
    """Merge what another build wrote to `path` meanwhile into `cache`, and write it back (atomically, under the
    lock). A file that cannot be read or merged is replaced by this build's cache."""
    from filelock import FileLock

    with FileLock(str(path) + ".lock"):
        if path.exists():
            other = _create(config, path.read_bytes())
            if other is None or not cache.combine(other, ignore_mismatch=False):
                log.warning("the timing cache %s could not be merged; replacing it with this build's", path)
        write_atomic(path, bytes(memoryview(cache.serialize())))


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
