"""`python -m engine bench`: speed of every available backend on this machine, plus the FP32 eager reference.

Per backend:
- model only: masks per second at batch 1 and batch 8 (the saliency graph alone, inputs ready);
- offline end to end: frames per second on --video, one stage after another as `engine render` works: decode,
  preprocess, model, every view at the frame's full size (overlay, mask, preserved, destroyed), and with --evidence
  the evidence check on every frame. This is also the pipeline the app ran before the live pipeline;
- live end to end, on each of --live-videos (default: the demo clip at 640x480 and at 1280x720): the app's
  pipeline: decoding and preparing run one frame ahead in a second thread, the views are made at --view-size (what
  the app shows), the evidence check runs as a second stream at ~10 per second in a third thread; frames per second
  of masks, evidence updates per second, time per stage;
- temporal stability: mean absolute change of the mask between consecutive frames (0 = perfectly steady);
- the ratios measured in the same run: each backend against PyTorch eager FP32 on the same device class (torch-cpu
  for CPU backends, torch-cuda FP32 eager for GPU ones), and the live pipeline against the offline one.
Each figure is the median over --repeats runs, with the spread (min..max). The table goes to stdout, the full
results to JSON (--out).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.api import Explainer
from engine.backends import availability
from engine.backends.base import DEFAULT_BATCH_SIZES
from engine.contract import AUTO
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from engine.runtime.live import EVIDENCE_INTERVAL_S, EvidenceStream, run_ahead
from engine.video.reader import VideoReader


@dataclass(frozen=True)
class Variant:
    """One row of the table: a backend with options."""

    label: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    reference: str = ""  # the label this row's ratio is measured against
    gpu: bool = False


VARIANTS = (
    Variant("torch-cpu", "torch-cpu"),
    Variant("onnxruntime", "onnxruntime", {}, reference="torch-cpu"),
    Variant("openvino", "openvino", {}, reference="torch-cpu"),
    Variant("torch-cuda-fp32-eager", "torch-cuda", {"precision": "fp32", "cuda_graphs": False}, gpu=True),
    Variant("torch-cuda", "torch-cuda", {}, reference="torch-cuda-fp32-eager", gpu=True),
    Variant("tensorrt", "tensorrt", {}, reference="torch-cuda-fp32-eager", gpu=True),
)
VARIANT_LABELS = tuple(variant.label for variant in VARIANTS)


@dataclass
class Spread:
    median: float
    low: float
    high: float
    runs: list[float]

    @classmethod
    def of(cls, runs: list[float]) -> Spread:
        return cls(statistics.median(runs), min(runs), max(runs), runs)

    def text(self) -> str:
        digits = 0 if self.median >= 100 else 1
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}..{self.high:.{digits}f})"


def model_rates(explainer: Explainer, batch: int, repeats: int, seconds: float) -> Spread:
    """Masks per second of the saliency graph alone at `batch`, inputs already in place."""
    call = explainer.model_call(batch)
    for _ in range(3):
        call()
    rates = []
    for _ in range(repeats):
        explainer.synchronize()
        start, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - start < seconds:
            call()
            calls += 1
            if calls % 8 == 0:
                explainer.synchronize()
        explainer.synchronize()
        rates.append(calls * batch / (time.perf_counter() - start))
    return Spread.of(rates)


def end_to_end(
    explainer: Explainer, video: Path, frames: int, repeats: int, evidence: bool, prefetch: int = 0
) -> tuple[Spread, dict[str, float], float, int]:
    """(frames per second, median ms per stage, temporal stability, frames per run) decoding `video` (in a
    background thread `prefetch` frames ahead, when > 0)."""
    rates: list[float] = []
    stages: dict[str, list[float]] = {}
    stability = float("nan")
    count = 0
    for repeat in range(repeats):
        masks: list[np.ndarray] = []
        start = time.perf_counter()
        count = 0
        with VideoReader(video) as reader:
            for frame in reader.prefetched(prefetch) if prefetch > 0 else reader:
                if count >= frames:
                    break
                explanation = explainer.explain(frame, "auto", evidence=evidence)
                count += 1
                if repeat == 0:
                    masks.append(explanation.mask)
                    for stage, ms in explanation.timings_ms.items():
                        stages.setdefault(stage, []).append(ms)
        rates.append(count / (time.perf_counter() - start))
        if repeat == 0 and len(masks) > 1:
            stability = float(np.mean([np.abs(b - a).mean() for a, b in zip(masks, masks[1:])]))
    return Spread.of(rates), {k: statistics.median(v) for k, v in stages.items()}, stability, count


@dataclass
class LiveRun:
    fps: Spread
    evidence_per_s: Spread
    stage_ms: dict[str, float]
    frames: int
    size: str


def live(
    explainer: Explainer, video: Path, frames: int, repeats: int, view_size: tuple[int, int], evidence: bool = True
) -> LiveRun:
    """The app's live pipeline on `video`, flat out: decode + prepare one frame ahead in a thread, the mask and the
    views at `view_size` here, the evidence stream (when `evidence`) in a third thread."""
    rates: list[float] = []
    evidence_rates: list[float] = []
    stages: dict[str, list[float]] = {}
    count = 0
    size = ""
    for repeat in range(repeats):
        stream = EvidenceStream(explainer.evidence) if evidence else None
        count = 0
        with VideoReader(video) as reader:
            size = f"{reader.width}x{reader.height}"
            frames_ahead = run_ahead(iter(reader), lambda frame: explainer.prepare(frame, view_size))
            assert isinstance(frames_ahead, Generator)
            start = time.perf_counter()
            try:
                for prepared in frames_ahead:
                    if count >= frames:
                        break
                    explanation = explainer.explain_prepared(prepared, AUTO, evidence=False)
                    if stream is not None:
                        stream.offer(explanation, frame_index=count, frame_time=time.perf_counter())
                    count += 1
                    if repeat == 0:
                        for stage, ms in explanation.timings_ms.items():
                            stages.setdefault(stage, []).append(ms)
            finally:
                frames_ahead.close()
            elapsed = time.perf_counter() - start
        rates.append(count / elapsed)
        if stream is not None:
            evidence_rates.append(stream.computed / elapsed)
            stream.close()
    return LiveRun(
        Spread.of(rates),
        Spread.of(evidence_rates or [0.0]),
        {k: statistics.median(v) for k, v in stages.items()},
        count,
        size,
    )


def run_bench(
    masker: Masker,
    blackbox: BlackBox,
    model_name: str,
    labels: tuple[str, ...],
    video: Path,
    frames: int,
    repeats: int,
    seconds: float,
    evidence: bool,
    prefetch: int = 0,
    threads: int = 0,
    log: Any = print,
    spinning: bool = False,
    live_videos: tuple[Path, ...] = (),
    view_size: tuple[int, int] = (576, 432),
    evidence_threads: int = 0,
) -> dict[str, Any]:
    """Measure every variant in `labels` that can run here; unavailable ones are listed with the reason."""
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for variant in VARIANTS:
        if variant.label not in labels:
            continue
        status = availability(variant.backend)
        if not status.ok:
            skipped[variant.label] = status.reason
            log(f"skip {variant.label}: {status.reason}")
            continue
        log(f"measuring {variant.label} ...")
        options = dict(variant.options)
        if threads and variant.backend in ("onnxruntime", "openvino", "torch-cpu"):
            options["threads"] = threads
        if evidence_threads and variant.backend in ("onnxruntime", "openvino"):
            options["evidence_threads"] = evidence_threads
        if spinning and variant.backend == "onnxruntime":
            options["spinning"] = True
        with Explainer.from_masker(
            masker,
            blackbox,
            variant.backend,
            name=model_name,
            evidence=evidence,
            batch_sizes=DEFAULT_BATCH_SIZES,  # the sizes measured; TensorRT's plans do not depend on them
            backend_options=options,
        ) as explainer:
            batch1 = model_rates(explainer, 1, repeats, seconds)
            batch8 = model_rates(explainer, 8, repeats, seconds)
            fps, stage_ms, stability, count = end_to_end(explainer, video, frames, repeats, evidence, prefetch)
            live_runs = [live(explainer, clip, frames, repeats, view_size) for clip in live_videos]
            results.append(
                {
                    "label": variant.label,
                    "backend": explainer.describe(),
                    "reference": variant.reference,
                    "masks_per_s_batch1": batch1.__dict__,
                    "masks_per_s_batch8": batch8.__dict__,
                    "e2e_fps": fps.__dict__,
                    "e2e_frames": count,
                    "stage_ms": stage_ms,
                    "temporal_stability": stability,
                    "live": [
                        {
                            "video": str(clip),
                            "size": run.size,
                            "fps": run.fps.__dict__,
                            "evidence_per_s": run.evidence_per_s.__dict__,
                            "stage_ms": run.stage_ms,
                            "frames": run.frames,
                        }
                        for clip, run in zip(live_videos, live_runs)
                    ],
                }
            )
    add_ratios(results)
    return {
        "machine": machine_info(),
        "model": model_name,
        "video": str(video),
        "video_size": _video_size(video),
        "frames": frames,
        "repeats": repeats,
        "evidence": evidence,
        "prefetch": prefetch,
        "threads": threads,
        "evidence_threads": evidence_threads,
        "spinning": spinning,
        "view_size": list(view_size),
        "results": results,
        "skipped": skipped,
    }


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each result's speed-up over its reference row (measured in the same run), where that row exists."""
    by_label = {result["label"]: result for result in results}
    for result in results:
        reference = by_label.get(result["reference"])
        if reference is not None:
            result["ratio_vs_reference"] = {
                key: result[key]["median"] / reference[key]["median"]
                for key in ("masks_per_s_batch1", "masks_per_s_batch8", "e2e_fps")
            }


def cpu_description() -> str:
    """The CPU's model name and the vector extensions that decide kernel speed (AVX2, AVX-512, AMX), on Linux."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    extensions = (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX-512 BF16", "avx512_bf16"), ("AMX", "amx_tile"))
    vector = [label for label, flag in extensions if flag in flags]
    return f"{name or platform.machine()} ({', '.join(vector) or 'no AVX2'})"


def machine_info() -> dict[str, Any]:
    import onnxruntime

    info: dict[str, Any] = {
        "cpu": cpu_description(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def _video_size(video: Path) -> str:
    with VideoReader(video) as reader:
        return f"{reader.width}x{reader.height}"


def table(report: dict[str, Any]) -> str:
    """The results as fixed-width text tables: offline (one stage after another), then live."""
    header = (
        f"{'backend':<24} {'masks/s b1':>20} {'masks/s b8':>20} {'offline fps':>18} {'x ref (b1/e2e)':>15} "
        f"{'stability':>9}  stages ms (pre/model/comp{'/evid' if report['evidence'] else ''})"
    )
    lines = [header, "-" * len(header)]
    for result in report["results"]:
        ratio = result.get("ratio_vs_reference")
        ratio_text = f"{ratio['masks_per_s_batch1']:.1f}/{ratio['e2e_fps']:.1f}" if ratio else "(reference)"
        stages = result["stage_ms"]
        stage_names = ["preprocess", "model", "composite"] + (["evidence"] if report["evidence"] else [])
        lines.append(
            f"{result['label']:<24} {Spread(**result['masks_per_s_batch1']).text():>20} "
            f"{Spread(**result['masks_per_s_batch8']).text():>20} {Spread(**result['e2e_fps']).text():>18} "
            f"{ratio_text:>15} {result['temporal_stability']:>9.4f}  "
            + "/".join(f"{stages.get(name, float('nan')):.1f}" for name in stage_names)
        )
    for label, reason in report["skipped"].items():
        lines.append(f"{label:<24} not available: {reason}")
    if any(result["live"] for result in report["results"]):
        width, height = report["view_size"]
        lines.append("")
        live_header = (
            f"{'live (views <= ' + str(width) + 'x' + str(height) + ')':<24} {'video':>22} {'fps (masks)':>18} "
            f"{'evidence/s':>16} {'x offline':>9}  stages ms (pre/model/comp)"
        )
        lines += [live_header, "-" * len(live_header)]
        for result in report["results"]:
            offline = result["e2e_fps"]["median"]
            for run in result["live"]:
                stages = run["stage_ms"]
                fps = Spread(**run["fps"])
                lines.append(
                    f"{result['label']:<24} {Path(run['video']).name + ' ' + run['size']:>22} {fps.text():>18} "
                    f"{Spread(**run['evidence_per_s']).text():>16} {fps.median / offline:>9.1f}  "
                    + "/".join(f"{stages.get(name, float('nan')):.1f}" for name in ("preprocess", "model", "composite"))
                )
    machine = report["machine"]
    lines.append(
        f"machine: {machine.get('gpu', 'no GPU')}, {machine['cpu_count']} CPU cores ({machine['cpu']}), "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), onnxruntime {machine['onnxruntime']}"
        + (f", load average {machine['load_average'][0]:.1f}" if "load_average" in machine else "")
    )
    evidence = "with the evidence check on every frame" if report["evidence"] else "without the evidence check"
    decoded = "in a background thread" if report["prefetch"] else "inline"
    lines.append(
        f"model {report['model']}; offline on {Path(report['video']).name} ({report['video_size']}), full-size views, "
        f"{evidence}; {report['frames']} frames (decoded {decoded})"
        f"; live: evidence at <= {1 / EVIDENCE_INTERVAL_S:.1f}/s in its own thread; median (min..max) of "
        f"{report['repeats']} runs"
    )
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
