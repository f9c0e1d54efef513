"""The TensorRT backend's logic that runs without TensorRT (which cannot be installed here): one plan key for every
caller, what the key depends on, the CUDA build of TensorRT, the plan cache and the timing cache. The backend itself
runs in test_backends.py where TensorRT and a GPU are present (scripts/gpu_check.sh)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.backends.base import DEFAULT_BATCH_SIZES
from engine.backends.tensorrt import (
    MAX_FRAMES,
    Environment,
    PlanKey,
    attach_timing_cache,
    check_batch_sizes,
    cuda_variant,
    installed_tensorrt_cuda,
    load_or_build,
    plan_keys,
    profile_shapes,
    require_tensorrt,
    store_timing_cache,
    timing_cache_path,
    variant_hint,
)
from engine.errors import BackendUnavailableError

H200 = Environment("10.13.3.9", "13", "13.0", "NVIDIA H200", "90")


def test_tensorrt_import_is_optional() -> None:
    """Here `tensorrt` is only the type stubs (an empty namespace package): unavailable, never a crash."""
    try:
        version = require_tensorrt()
    except BackendUnavailableError as error:
        assert "not installed" in str(error)
    else:
        assert version[0].isdigit()


# --- one plan for `engine build`, `engine bench` and the app ------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "batch_sizes"),
    [
        ("engine build", DEFAULT_BATCH_SIZES),
        ("engine bench", DEFAULT_BATCH_SIZES),
        ("the app's Explainer (one frame at a time)", (1,)),
        (f"engine render --batch {MAX_FRAMES}", (1, MAX_FRAMES)),
    ],
)
def test_build_bench_and_the_app_share_one_plan_per_graph(graphs, onnx_files, engine_cache, caller, batch_sizes):
    """What TensorRTBackend does with its batch sizes: checks that they fit the one profile, then keys the plans
    without them. So the plan `engine build` writes is the one the app loads."""
    check_batch_sizes(batch_sizes)
    keys = plan_keys(graphs, H200, engine_cache)
    paths = {graph: key.plan_path(engine_cache) for graph, key in keys.items()}
    assert paths == {
        "saliency": PlanKey(
            "saliency", keys["saliency"].onnx_sha256, H200, "fp16", profile_shapes("saliency", 224)
        ).plan_path(engine_cache),
        "classifier": PlanKey(
            "classifier", keys["classifier"].onnx_sha256, H200, "fp16", profile_shapes("classifier", 224)
        ).plan_path(engine_cache),
    }
    assert keys["saliency"].onnx_sha256 != keys["classifier"].onnx_sha256  # each graph's own FP16 export


def test_one_profile_min_1_opt_1_max_16_frames() -> None:
    assert profile_shapes("saliency", 224) == (
        ("image", (1, 3, 224, 224), (1, 3, 224, 224), (16, 3, 224, 224)),
        ("target", (1,), (1,), (16,)),
    )
    # the evidence check classifies the preserved and the destroyed image of each frame
    assert profile_shapes("classifier", 224) == (("image", (1, 3, 224, 224), (1, 3, 224, 224), (32, 3, 224, 224)),)
    with pytest.raises(BackendUnavailableError, match="1 to 16 frames per batch, not 32"):
        check_batch_sizes((1, 8, 32))
    with pytest.raises(BackendUnavailableError):
        check_batch_sizes((0,))


def test_plan_key_covers_everything_a_plan_depends_on(tmp_path) -> None:
    shapes = profile_shapes("saliency", 224)
    key = PlanKey("saliency", "ab" * 32, H200, "fp16", shapes)
    variants = [
        replace(key, onnx_sha256="cd" * 32),
        replace(key, environment=replace(H200, tensorrt_version="11.4.0.106")),
        replace(key, environment=replace(H200, tensorrt_cuda="12")),  # the tensorrt-cu12 wheel
        replace(key, environment=replace(H200, torch_cuda="12.8")),  # a CUDA 12 PyTorch
        replace(key, environment=replace(H200, gpu_name="NVIDIA L4", compute_capability="89")),
        replace(key, precision="fp32"),
        replace(key, shapes=profile_shapes("saliency", 192)),
    ]
    paths = {key.plan_path(tmp_path)} | {variant.plan_path(tmp_path) for variant in variants}
    assert len(paths) == 1 + len(variants)
    assert key.plan_path(tmp_path) == PlanKey("saliency", "ab" * 32, replace(H200), "fp16", shapes).plan_path(tmp_path)
    cache = timing_cache_path(tmp_path, replace(H200, gpu_name="NVIDIA H100 80GB HBM3"))
    assert cache.parent == tmp_path / "tensorrt" and " " not in cache.name and "cu13" in cache.name
    assert timing_cache_path(tmp_path, replace(H200, tensorrt_cuda="12")) != timing_cache_path(tmp_path, H200)


def test_the_cuda_build_of_tensorrt_comes_from_its_wheels() -> None:
    assert cuda_variant(["tensorrt_cu13", "tensorrt_cu13_bindings", "tensorrt_cu13_libs"]) == "13"
    assert cuda_variant(["tensorrt-cu12-libs"]) == "12"
    assert cuda_variant(["tensorrt_cu12", "tensorrt_cu13_libs"]) == ""  # a mixed install: unknown, not guessed
    assert cuda_variant(["tensorrt-stubs"]) == ""
    assert installed_tensorrt_cuda({"tensorrt": ["tensorrt_cu13"], "tensorrt_libs": ["tensorrt_cu13_libs"]}) == "13"
    try:
        require_tensorrt()
    except BackendUnavailableError:
        assert installed_tensorrt_cuda() == ""  # this machine: the stubs only
    assert variant_hint("13", "12.8").endswith("pip install tensorrt-cu12")
    assert variant_hint("13", "13.0") == variant_hint("", "13.0") == ""


# --- the plan cache -----------------------------------------------------------------------------------------------


def test_tensorrt_plan_cache_rebuilds_a_corrupt_plan(tmp_path) -> None:
    """load_or_build with a fake engine: plans are b'PLAN' + payload; anything else fails to deserialise."""
    key = PlanKey("saliency", "ab" * 32, H200, "fp16", profile_shapes("saliency", 224))
    builds: list[int] = []

    def deserialize(data: bytes) -> str | None:
        return data.decode() if data.startswith(b"PLAN") else None

    def build() -> bytes:
        builds.append(1)
        return b"PLAN-%d" % len(builds)

    engine, built = load_or_build(key, tmp_path, deserialize, build)
    assert (engine, built) == ("PLAN-1", True)
    card = json.loads(key.plan_path(tmp_path).with_suffix(".json").read_text())
    assert card["environment"]["gpu_name"] == "NVIDIA H200" and card["environment"]["tensorrt_cuda"] == "13"
    assert load_or_build(key, tmp_path, deserialize, build) == ("PLAN-1", False)  # cached, not rebuilt
    key.plan_path(tmp_path).write_bytes(b"\x00truncated")  # a damaged cache file
    assert load_or_build(key, tmp_path, deserialize, build) == ("PLAN-2", True)
    assert key.plan_path(tmp_path).read_bytes() == b"PLAN-2"

    def broken(data: bytes) -> str | None:
        raise RuntimeError("deserialisation crashed")

    key.plan_path(tmp_path).write_bytes(b"PLAN-old")
    with pytest.raises(BackendUnavailableError, match="cannot deserialise"):
        load_or_build(key, tmp_path, broken, build)  # never trusts what it cannot load


# --- the timing cache ---------------------------------------------------------------------------------------------


class StandInCache:
    def __init__(self, entries: set[str]) -> None:
        self.entries = entries

    def combine(self, input_cache: StandInCache, ignore_mismatch: bool) -> bool:
        self.entries |= input_cache.entries
        return True

    def serialize(self) -> bytes:
        return b"TIMING:" + ",".join(sorted(self.entries)).encode()


class StandInConfig:
    """Stands in for trt.IBuilderConfig ONLY in the decisions attach_timing_cache / store_timing_cache take on
    TensorRT's answers (TensorRT cannot be installed here). Like TensorRT's bindings, create_timing_cache returns
    None for bytes it cannot parse, and set_timing_cache returns False for a cache it will not take (here: one from
    another GPU). The files, the lock, the deletion and the atomic write are the real ones."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse  # an entry that marks a cache "from another GPU"
        self.attached: StandInCache | None = None

    def create_timing_cache(self, serialized_timing_cache: bytes) -> StandInCache | None:
        if serialized_timing_cache == b"":
            return StandInCache(set())
        if not serialized_timing_cache.startswith(b"TIMING:"):
            return None
        return StandInCache(set(serialized_timing_cache[7:].decode().split(",")) - {""})

    def set_timing_cache(self, cache: StandInCache, ignore_mismatch: bool) -> bool:
        if ignore_mismatch or (self.refuse and self.refuse in cache.entries):
            return False
        self.attached = cache
        return True


def test_a_damaged_timing_cache_file_is_replaced(tmp_path) -> None:
    path = tmp_path / "tensorrt" / "timing.cache"
    path.parent.mkdir()
    path.write_bytes(b"\x00\x13half a timing cache, cut by a crash")
    config = StandInConfig()
    cache = attach_timing_cache(config, path)
    assert config.attached is cache and cache.entries == set()  # an empty cache, attached
    assert not path.exists()  # the damaged file is gone
    cache.entries.add("conv1")  # what the build learnt
    store_timing_cache(config, cache, path)
    assert path.read_bytes() == b"TIMING:conv1"
    again = attach_timing_cache(StandInConfig(), path)  # the next build starts from it
    assert again.entries == {"conv1"} and path.exists()


def test_a_timing_cache_tensorrt_refuses_is_dropped(tmp_path) -> None:
    path = tmp_path / "timing.cache"
    path.write_bytes(b"TIMING:from-another-gpu")
    config = StandInConfig(refuse="from-another-gpu")
    assert attach_timing_cache(config, path).entries == set() and not path.exists()


def test_storing_merges_another_builds_cache_or_replaces_a_damaged_one(tmp_path) -> None:
    path = tmp_path / "timing.cache"
    config = StandInConfig()
    cache = attach_timing_cache(config, path)
    cache.entries.add("decoder")
    path.write_bytes(b"TIMING:encoder")  # another build finished meanwhile
    store_timing_cache(config, cache, path)
    assert path.read_bytes() == b"TIMING:decoder,encoder"
    path.write_bytes(b"garbage")  # damaged meanwhile
    store_timing_cache(config, StandInCache({"head"}), path)
    assert path.read_bytes() == b"TIMING:head"


def test_no_empty_timing_cache_is_an_error_not_a_crash(tmp_path) -> None:
    class NoCache(StandInConfig):
        def create_timing_cache(self, serialized_timing_cache: bytes) -> StandInCache | None:
            return None

    with pytest.raises(BackendUnavailableError, match="empty timing cache"):
        attach_timing_cache(NoCache(), Path(tmp_path) / "timing.cache")
