"""TensorRT's caches, in plain Python (runs and is tested without TensorRT): the plan key (what a plan was built
for), the plan cache (load, or build and store; a plan that does not deserialise is rebuilt) and the timing cache
(read and written under a file lock; one TensorRT cannot read is dropped). engine/backends/tensorrt.py builds and
runs the plans.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

from typing_extensions import Buffer  # collections.abc.Buffer: Python 3.12

from engine.errors import BackendUnavailableError
from engine.export.cache import cached_onnx
from engine.export.graphs import ModelGraphs
from engine.paths import file_sha256, write_atomic

log = logging.getLogger(__name__)
Engine = TypeVar("Engine")
PRECISION = "fp16"
# The largest saliency batch a plan takes. The app explains one frame at a time, `engine bench` and `engine render`
# run 8; 16 leaves room for `render --batch 16`. Activations at 224 x 224 in FP16 stay small at 16 (tens of MB), and
# TensorRT picks its kernels for the opt shape, 1: the live app's latency is what the plan is tuned for.
MAX_FRAMES = 16
# The classifier graph runs the evidence check: the preserved and the destroyed image of every frame, 2 per frame.
IMAGES_PER_FRAME = {"saliency": 1, "classifier": 2}
Shapes = tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (input, min, opt, max)


@dataclass(frozen=True)
class Environment:
    """The machine side of a plan's key: a plan built under one of these does not run (well) under another."""

    tensorrt_version: str
    tensorrt_cuda: str  # the CUDA major TensorRT's wheel was built for ("12", "13"; "" when unknown)
    torch_cuda: str  # torch.version.cuda, e.g. "13.0"
    gpu_name: str
    compute_capability: str  # e.g. "90"


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
