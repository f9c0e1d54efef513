"""TensorRT backend: FP16 plans built from the FP16 ONNX export, cached per model, GPU and TensorRT version.

Written against the TensorRT 10.x / 11.x Python API (type-checked against tensorrt-stubs in `make test`; TensorRT
cannot be installed on our development and CI machines, so this module has not been run there):
- the network is strongly typed (NetworkDefinitionCreationFlag.STRONGLY_TYPED), parsed from the FP16 ONNX, whose
  types decide the precision (TensorRT 11 has no FP16 builder flag; the mask ratio is FP32 in the graph);
- one optimisation profile covers the batch sizes used (min 1, opt = the first requested, max = the largest);
- the timing cache is read and written under a file lock, so that concurrent builds share it safely;
- plans are cached in `cache_dir()/tensorrt/`, keyed by the ONNX hash, TensorRT version, GPU name and compute
  capability, precision and shapes (JSON card beside each plan); a plan that does not deserialise is rebuilt;
- I/O buffers are torch CUDA tensors allocated once; `infer` binds them (set_tensor_address) and enqueues on
  torch's current stream (execute_async_v3), so frames never leave the GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

from engine.backends.base import DEFAULT_BATCH_SIZES, Availability, Backend, check_graph
from engine.errors import BackendUnavailableError
from engine.export.cache import cached_onnx, file_sha256
from engine.graphs import ModelGraphs
from engine.paths import cache_dir, write_atomic

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)
Engine = TypeVar("Engine")
PRECISION = "fp16"
WORKSPACE_BYTES = 1 << 30


def require_tensorrt() -> str:
    """The TensorRT version, or BackendUnavailableError saying why it cannot be used."""
    try:
        import tensorrt
    except ImportError as error:
        raise BackendUnavailableError(f"TensorRT is not installed (pip install 'tensorrt>=10.12'): {error}") from error
    if not hasattr(tensorrt, "Builder"):  # e.g. only the type stubs: `tensorrt` is then an empty namespace package
        raise BackendUnavailableError("TensorRT is not installed (the 'tensorrt' found here has no runtime)")
    return str(tensorrt.__version__)


# --- the cache key and the plan cache (pure Python: tested without TensorRT) --------------------------------------


@dataclass(frozen=True)
class PlanKey:
    """Everything a plan depends on: change any of it and the plan is rebuilt."""

    graph: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    shapes: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (input, min, opt, max)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def plan_path(self, root: Path) -> Path:
        return root / "tensorrt" / f"{self.graph}-{self.precision}-{self.digest()[:32]}.plan"


def profile_shapes(
    graph: str, input_size: int, batch_sizes: tuple[int, ...]
) -> tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]:
    """(input, min, opt, max) per input. The classifier sees 2 images per frame (preserved, destroyed)."""
    scale = 2 if graph == "classifier" else 1
    low, best, high = 1, batch_sizes[0] * scale, max(batch_sizes) * scale
    image = (
        "image",
        (low, 3, input_size, input_size),
        (best, 3, input_size, input_size),
        (high, 3, input_size, input_size),
    )
    if graph == "classifier":
        return (image,)
    return (image, ("target", (low,), (best,), (high,)))


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


def timing_cache_path(root: Path, tensorrt_version: str, gpu_name: str, compute_capability: str) -> Path:
    gpu = "".join(c if c.isalnum() else "-" for c in gpu_name)
    return root / "tensorrt" / f"timing-{tensorrt_version}-{gpu}-sm{compute_capability}.cache"


# --- building and running (TensorRT) ----------------------------------------------------------------------------


def build_plan(
    onnx_path: Path,
    shapes: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...],
    timing_cache: Path,
) -> bytes:
    """A serialized plan: strongly typed network from the ONNX file, one optimisation profile, shared timing cache."""
    import tensorrt as trt
    from filelock import FileLock

    logger = trt.Logger(trt.Logger.WARNING)
    builder: trt.Builder = trt.Builder(logger)
    network: trt.INetworkDefinition = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser: trt.OnnxParser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config: trt.IBuilderConfig = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile: trt.IOptimizationProfile = builder.create_optimization_profile()
    for name, low, best, high in shapes:
        profile.set_shape(name, trt.Dims(list(low)), trt.Dims(list(best)), trt.Dims(list(high)))
    config.add_optimization_profile(profile)
    lock = FileLock(str(timing_cache) + ".lock")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        previous = timing_cache.read_bytes() if timing_cache.exists() else b""
    cache: trt.ITimingCache = config.create_timing_cache(previous)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build {onnx_path.name} (see the TensorRT log above)")
    with lock:  # merge what this build learnt into the shared cache (another build may have written meanwhile)
        if timing_cache.exists():
            cache.combine(config.create_timing_cache(timing_cache.read_bytes()), ignore_mismatch=True)
        write_atomic(timing_cache, bytes(memoryview(cache.serialize())))
    return bytes(memoryview(serialized))


def _as_list(dims: trt.Dims) -> list[int]:
    return [dims[axis] for axis in range(len(dims))]


class _Plan:
    """One deserialised engine with its context and I/O buffers (torch CUDA tensors, allocated once)."""

    def __init__(self, engine: trt.ICudaEngine, device: torch.device) -> None:
        import tensorrt as trt

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
            self.context.set_tensor_address(name, buffer.data_ptr())

    def __call__(self, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = feed["image"].shape[0]
        if batch > self.max_batch:
            raise ValueError(f"batch {batch} exceeds the plan's optimisation profile (max {self.max_batch})")
        for name in self.inputs:
            self.buffers[name][:batch].copy_(feed[name])
            self.context.set_input_shape(name, tuple(self.buffers[name][:batch].shape))
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return {name: self.buffers[name][:batch].float().clone() for name in self.outputs}


class TensorRTBackend(Backend):
    """FP16 TensorRT plans of both graphs, enqueued on torch's current CUDA stream."""

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
        import tensorrt as trt

        root = cache_root or cache_dir()
        self.device = torch.device("cuda", torch.cuda.current_device())
        gpu_name = torch.cuda.get_device_name(self.device)
        capability = "".join(str(part) for part in torch.cuda.get_device_capability(self.device))
        timing_cache = timing_cache_path(root, trt.__version__, gpu_name, capability)
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime: trt.Runtime = trt.Runtime(logger)
        self.plans: dict[str, _Plan] = {}
        self.built: list[str] = []
        for graph in ("saliency", "classifier"):
            onnx_path = cached_onnx(graphs, graph, PRECISION, root)
            shapes = profile_shapes(graph, graphs.input_size, self.batch_sizes)
            key = PlanKey(graph, file_sha256(onnx_path), trt.__version__, gpu_name, capability, PRECISION, shapes)
            engine, built = load_or_build(
                key,
                root,
                deserialize=self.runtime.deserialize_cuda_engine,
                build=partial(build_plan, onnx_path, shapes, timing_cache),
            )
            if built:
                self.built.append(str(key.plan_path(root)))
            self.plans[graph] = _Plan(engine, self.device)

    @classmethod
    def availability(cls) -> Availability:
        try:
            version = require_tensorrt()
        except BackendUnavailableError as error:
            return Availability(False, str(error))
        if not torch.cuda.is_available():
            return Availability(False, f"TensorRT {version} is installed but PyTorch sees no NVIDIA GPU")
        return Availability(True, f"TensorRT {version} FP16 on {torch.cuda.get_device_name()}")

    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_graph(graph)
        return self.plans[graph](feed)

    def describe(self) -> str:
        return "tensorrt FP16 (strongly typed plans)"

    def close(self) -> None:
        self.plans.clear()
