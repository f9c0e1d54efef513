"""`python -m engine build|export|bench|render|steadiness|info` (also installed as `saliency-engine`).

Every argument is checked before any work (engine/tools/arguments.py): a bad one is one line on stderr and exit status
2, before a model loads or an output file is opened. Errors met while working are one line and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SaliencyError, missing_extra
from engine.tools.cli_parser import parse_args, steadiness_settings

if TYPE_CHECKING:
    from engine.api import Explainer
    from engine.models.blackbox import BlackBox
    from engine.models.masker import Masker


def main(argv: list[str] | None = None) -> int:
    # FFmpeg's decoder chatter ("non-intra slice in an IDR NAL unit") would break the one-line answers; real
    # failures reach the user as VideoError messages. Set before OpenCV first loads (it loads lazily).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    args = parse_args(argv)
    try:
        return int(COMMANDS[args.command](args))
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        extra = missing_extra(error)
        if extra is None:
            raise
        print(f"error: `{args.command}` {extra}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace) -> tuple[Masker, BlackBox, str]:
    """(masker, black box, name) from the checked --model / --untrained / default model."""
    from engine.api import load_masker

    if args.untrained:
        import torch

        from engine.models.blackbox import create_blackbox
        from engine.models.encoders import create_encoder
        from engine.models.masker import Masker, MaskerConfig

        blackbox = create_blackbox(MaskerConfig().encoder)
        torch.manual_seed(0)
        return Masker(MaskerConfig(), create_encoder(MaskerConfig().encoder, blackbox)), blackbox, "untrained"
    model = load_masker(args.model)
    return model.masker, model.blackbox, Path(args.model).stem


def _info(args: argparse.Namespace) -> int:
    from engine.explainer import plan_runtime, torch_installed
    from engine.paths import bundled_models, cache_dir, data_root, default_model_path

    lines = _backend_lines() if torch_installed() else _backend_lines_without_torch()
    plan = plan_runtime("auto")
    if plan.host:  # no NVIDIA GPU: the CPU runtime, which needs no torch once a model is prepared
        lines[-1] = f"auto: {plan.name}, the CPU runtime ({plan.reason})"
    print("\n".join(lines))
    model = default_model_path()
    print(f"default model: {model} ({'present' if model.exists() else 'missing'})")
    print(f"bundled models: {', '.join(path.stem for path in bundled_models()) or 'none'}")
    print(f"cache: {cache_dir()}")
    print(f"data: {data_root()} ({'present' if data_root().exists() else 'missing; set $SALIENCY_DATA'})")
    return 0


def _backend_lines() -> list[str]:
    from engine.backends import availability, backend_report

    lines = backend_report()
    openvino = availability("openvino")
    lines.insert(-1, f"  {'openvino':<12} {'yes' if openvino.ok else 'no '}  {openvino.reason} (CPU runtime only)")
    return lines


def _backend_lines_without_torch() -> list[str]:
    """A plain install: what each backend choice needs, from engine.explainer's torch-free checks."""
    from engine.explainer import backend_availability

    lines = ["backends (a plain install: the CPU runtime; PyTorch is not installed):"]
    for name, (ok, reason) in backend_availability().items():
        if name != "auto":
            lines.append(f"  {name:<12} {'yes' if ok else 'no '}  {reason}")
    return [*lines, "auto: the CPU runtime"]


def _export(args: argparse.Namespace) -> int:
    from engine.export.prepare import export_folder

    print(f"exporting {args.model} to {args.out} (ONNX Runtime checks each graph against PyTorch FP32):")
    card = export_folder(args.model, args.out)
    print(f"done: open {card.parent} (or {card.name}) in the app, or pass it as --model")
    return 0


def _build(args: argparse.Namespace) -> int:
    from engine.api import load_masker
    from engine.export.graphs import model_graphs
    from engine.tools.build import build, resolve_backends

    model = load_masker(args.model)
    graphs = model_graphs(model.masker, model.blackbox, name=Path(args.model).stem)
    build(graphs, resolve_backends(args.backend), args.out)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from engine.tools.bench import VARIANT_LABELS, run_bench, table, write_json

    masker, blackbox, name = _load(args)
    report = run_bench(
        masker,
        blackbox,
        name,
        args.backends or VARIANT_LABELS,
        args.video,
        args.frames,
        args.repeats,
        args.seconds,
        args.evidence,
        args.prefetch,
        args.threads,
        log=lambda line: print(line, file=sys.stderr),
        spinning=args.spinning,
        live_videos=_live_videos(args.live_videos),
        view_size=args.view_size,
        evidence_threads=args.evidence_threads,
    )
    print(table(report))
    if args.out:
        print(f"results: {write_json(report, args.out)}")
    return 0


def _live_videos(given: list[Path] | None) -> tuple[Path, ...]:
    """The videos of the live rows: as given, else the demo clip at its own 640x480 and at 1280x720."""
    from engine.paths import DEMO_CLIP

    if given is not None:
        return tuple(given)
    return tuple(clip for clip in (DEMO_CLIP, DEMO_CLIP.with_name("box-720p.mp4")) if clip.exists())


def _explainer(args: argparse.Namespace, **settings: Any) -> Explainer:
    """The Explainer for --model / the default model (the CPU runtime finds a prepared model without torch), or for
    an untrained masker (--untrained)."""
    from engine.api import Explainer

    if args.untrained:
        masker, blackbox, name = _load(args)
        return Explainer.from_masker(masker, blackbox, args.backend, name=name, **settings)
    return Explainer(args.model, args.backend, **settings)


def _render(args: argparse.Namespace) -> int:
    from engine.tools.render import render

    steadiness = steadiness_settings(args)
    with _explainer(args, fill=args.fill, opacity=args.opacity, batch_sizes=(1, args.batch)) as explainer:
        print(f"backend: {explainer.backend_name} ({explainer.backend_reason})", file=sys.stderr)
        try:
            result = render(
                explainer,
                args.input,
                args.output,
                args.target,
                args.view,
                args.batch,
                args.max_frames,
                box=args.box,
                caption=args.caption,
                table=args.table,
                steadiness=steadiness,
            )
        except KeyboardInterrupt:
            done = f"{args.output} and its table hold" if args.table else f"{args.output} holds"
            print(f"interrupted: {done} the frames written so far", file=sys.stderr)
            return 130
    print(
        f"wrote {result.frames} frames to {result.path}"
        + (f" and their numbers to {result.table}" if result.table else "")
    )
    return 0


def _steadiness(args: argparse.Namespace) -> int:
    from engine.video.steadiness import measure_clips, tables, write_json

    masker, blackbox, name = _load(args)
    report = measure_clips(
        masker,
        blackbox,
        name,
        args.clips,
        backend=args.backend,
        frames=args.frames,
        batch=args.batch,
        alphas=args.alphas,
        margins=args.margins,
        holds=args.holds,
        steady=(args.margin, args.hold),
        log=lambda line: print(line, file=sys.stderr),
    )
    print(tables(report))
    if args.out:
        print(f"results: {write_json(report, args.out)}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "info": _info,
    "build": _build,
    "export": _export,
    "bench": _bench,
    "render": _render,
    "steadiness": _steadiness,
}


if __name__ == "__main__":
    raise SystemExit(main())
