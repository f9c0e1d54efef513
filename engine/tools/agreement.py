"""Do the CPU runtime's explanations equal the torch pipeline's?
`python -m engine.tools.agreement [--video V] [--frames N]`.

The reference is the pipeline every explanation came from before the CPU runtime: the model in PyTorch FP32 and the
views composited with torch (the device kernels, on the CPU). The candidate is what the app and `engine render` run on a
machine without an NVIDIA GPU: the prepared ONNX export in ONNX Runtime, composited with OpenCV on the host, once at
the frame's own size and once the live way (views at the window's size, made again at full size for a snapshot by
`full_resolution`), with the evidence checked both in the same call and afterwards (the live stream's way).

Per frame it reports the target class (equal or not), the IoU of the full-resolution masks at 0.5, the largest
|dM|, and the largest difference of the three evidence probabilities. Exit status 1 when a frame's IoU is below
`MIN_IOU` or a target differs, so a script can rely on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.contract import AUTO, Explanation
from engine.errors import SaliencyError
from engine.paths import DEFAULT_MODEL, DEMO_CLIP
from engine.runtime.composite_host import full_resolution
from engine.tolerances import mask_iou
from engine.video.reader import VideoReader

MIN_IOU = 0.99  # issue 13's bar for "the same masks as before at full resolution"
LIVE_VIEW_SIZE = (576, 432)  # what the app's views get in its default window (engine.tools.bench's --view-size default)


@dataclass(frozen=True)
class FrameAgreement:
    index: int
    same_target: bool
    iou: float  # full-size masks at 0.5: direct full-size explanation vs the reference
    iou_live: float  # the live way (view size, then full_resolution) vs the reference
    max_mask_diff: float
    max_evidence_diff: float  # the three probabilities, same-call evidence vs the reference
    stream_equals_same_call: bool  # evidence checked afterwards == evidence checked in the same call


def frames_of(video: Path, count: int, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    with VideoReader(video) as reader:
        for index, frame in enumerate(reader):
            if index // stride >= count:
                return
            if index % stride == 0:
                yield index, frame


def _reference(model_path: Path) -> object:
    """The torch pipeline on the CPU (the pre-runtime path): PyTorch FP32 + torch compositing."""
    from engine.backends import build_backend
    from engine.export.graphs import model_graphs
    from engine.modelfiles.loading import load_masker
    from engine.runtime.device import DeviceKernels
    from engine.runtime.stages import FramePipeline

    model = load_masker(model_path)
    graphs = model_graphs(model.masker, model.blackbox, name=model_path.stem)
    backend, _, _ = build_backend("torch-cpu", graphs)
    return FramePipeline(DeviceKernels(backend, graphs.input_size), model.blackbox.classes)


def compare(model_path: Path, video: Path, count: int, stride: int) -> list[FrameAgreement]:
    from engine.explainer import Explainer
    from engine.runtime.stages import FramePipeline

    reference = _reference(model_path)
    assert isinstance(reference, FramePipeline)
    results = []
    with Explainer(model_path, "onnxruntime") as explainer:
        for index, frame in frames_of(video, count, stride):
            expected = reference.run([reference.prepare(frame)], [AUTO])[0]
            direct = explainer.explain(frame, expected.target)
            live = explainer.explain(frame, expected.target, view_size=LIVE_VIEW_SIZE, evidence=False)
            streamed = explainer.evidence(live)
            results.append(_agreement(index, expected, direct, full_resolution(live), streamed))
    return results


def _agreement(
    index: int, expected: Explanation, direct: Explanation, live: Explanation, streamed: dict[str, float]
) -> FrameAgreement:
    same_call = direct.probabilities or {}
    reference = expected.probabilities or {}
    return FrameAgreement(
        index=index,
        same_target=expected.target == direct.target,
        iou=mask_iou(direct.mask, expected.mask),
        iou_live=mask_iou(live.mask, expected.mask),
        max_mask_diff=float(np.abs(direct.mask - expected.mask).max()),
        max_evidence_diff=max(abs(same_call[key] - reference[key]) for key in reference),
        stream_equals_same_call=all(np.isclose(streamed[key], same_call[key], rtol=0, atol=1e-6) for key in same_call),
    )


def report(results: list[FrameAgreement]) -> str:
    ious = np.array([item.iou for item in results])
    live = np.array([item.iou_live for item in results])
    evidence = np.array([item.max_evidence_diff for item in results])
    lines = [
        f"{len(results)} frames; targets equal on {sum(item.same_target for item in results)}",
        f"mask IoU at 0.5, full size:           min {ious.min():.4f}  mean {ious.mean():.4f}",
        f"mask IoU at 0.5, live then full size: min {live.min():.4f}  mean {live.mean():.4f}",
        f"largest |dM|: {max(item.max_mask_diff for item in results):.2e}",
        f"evidence difference (probability), per frame the largest of three: median {np.median(evidence):.2e}, "
        f"largest {evidence.max():.2e}",
        "evidence checked afterwards == checked in the same call: "
        f"{sum(item.stream_equals_same_call for item in results)} of {len(results)} frames",
    ]
    return "\n".join(lines)


def passed(results: list[FrameAgreement]) -> bool:
    return all(
        item.same_target and min(item.iou, item.iou_live) >= MIN_IOU and item.stream_equals_same_call
        for item in results
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.tools.agreement",
        description="Compare the CPU runtime's explanations (ONNX Runtime + host compositing) with the torch "
        "pipeline's on frames of a video: targets, full-size mask IoU at 0.5, evidence. Exit 1 below IoU "
        f"{MIN_IOU}.",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model file (default: the bundled one)")
    parser.add_argument("--video", type=Path, default=DEMO_CLIP, help="video (default: the demo clip)")
    parser.add_argument("--frames", type=int, default=50, help="frames compared (default 50)")
    parser.add_argument("--stride", type=int, default=9, help="take every STRIDE-th frame (default 9)")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.stride < 1:
        parser.error("--frames and --stride are at least 1")
    for path in (args.model, args.video):
        if not path.exists():
            parser.error(f"no such file: {path}")
    try:
        results = compare(args.model, args.video, args.frames, args.stride)
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not results:
        print(f"error: no frames read from {args.video}", file=sys.stderr)
        return 2
    print(report(results))
    ok = passed(results)
    print("agree" if ok else f"DISAGREE (a frame below IoU {MIN_IOU}, a different target, or different evidence)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
