"""The command line of `python -m engine` (`saliency-engine`): the parser and the checks of every argument.

Torch-free: every argument is checked here, before a model loads or an output file is opened; a bad one is one line
on stderr and exit status 2 (engine/tools/arguments.py holds the checks of single values). engine/__main__.py runs the
commands.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.classes import imagenet_classes
from engine.contract import BACKEND_CHOICES, BACKEND_NAMES, FILLS, RENDER_VIEWS
from engine.tools.arguments import (
    VIDEO_SUFFIXES,
    ArgumentTypeError,
    Parser,
    at_least,
    check_not_input,
    fraction,
    model_classes,
    model_file,
    output_file,
    output_folder,
    positive,
    target_class,
    video_file,
    video_output,
    view_size,
)

if TYPE_CHECKING:
    from engine.runtime.temporal import Steadiness

EPILOG = """examples:
  python -m engine info
  python -m engine build assets/models/lite0-default/lite0-default.safetensors --backend all
  python -m engine export runs/mine/mine.safetensors --out exported/mine
  python -m engine bench --untrained --frames 120 --out out/bench.json
  python -m engine render clip.mp4 -o explained.mp4 --class auto --view grid
  python -m engine steadiness clip.mp4 --frames 300
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The checked arguments; a bad one exits with one line on stderr and status 2, before any work."""
    args = build_parser().parse_args(argv)
    try:
        args.check(args)  # what needs two arguments, or the default model
    except ArgumentTypeError as error:
        args.usage.error(str(error))
    return args


def _check_export(args: argparse.Namespace) -> None:
    if args.model.name.endswith(".card.json"):
        raise ArgumentTypeError(f"argument model: {args.model} is exported already; export its .safetensors file")


def build_parser() -> Parser:
    """Torch-free: every argument is checked here, and by the `check` of its command, before a model loads."""
    installed = Path(sys.argv[0]).name == "saliency-engine"  # the console script, else `python -m engine`
    parser = Parser(
        prog="saliency-engine" if installed else "python -m engine",
        description="Build, benchmark and run masking models (real-time saliency for black-box classifiers).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="backends available here (and why not), cache folder, bundled models")
    info.set_defaults(check=lambda args: None, usage=info)

    build = commands.add_parser("build", help="export to ONNX (FP32, FP16), check the exports, build engines")
    build.add_argument("model", type=model_file, help="a model file (.safetensors with its card)")
    build.add_argument("--backend", choices=("auto", "all", *BACKEND_NAMES), default="auto")
    build.add_argument("--out", type=output_folder, default=None, help="folder for the files (default: the user cache)")
    build.set_defaults(check=lambda args: None, usage=build)

    export = commands.add_parser(
        "export",
        help="write an exported model folder (ONNX graphs + card) that installs without PyTorch open directly",
        description="Export a model file to a folder that the app and the CPU runtime open without PyTorch: "
        "NAME.saliency.onnx and NAME.classifier.onnx (FP32, checked against PyTorch), the weights both read "
        "(NAME.weights.bin), the card with every file's sha256 (NAME.card.json) and a copy of the model file.",
    )
    export.add_argument("model", type=model_file, help="a model file (.safetensors with its card)")
    export.add_argument("--out", type=output_folder, required=True, help="the folder to write (made if needed)")
    export.set_defaults(check=_check_export, usage=export)

    bench = commands.add_parser("bench", help="masks/s and end-to-end frames/s per backend, table + JSON")
    _model_options(bench)
    bench.add_argument(
        "--backends",
        type=_bench_rows,
        default=None,
        help="comma-separated rows to measure, e.g. torch-cpu,onnxruntime (default: every row)",
    )
    bench.add_argument("--video", type=video_file, default=None, help="default: the bundled demo clip")
    bench.add_argument("--frames", type=at_least(1), default=120, help="frames per end-to-end run (default 120)")
    bench.add_argument("--repeats", type=at_least(1), default=3, help="runs per figure; median and spread (default 3)")
    bench.add_argument("--seconds", type=positive, default=1.0, help="minimum time per model-only run (default 1)")
    bench.add_argument("--evidence", action="store_true", help="also run the live evidence check end to end")
    bench.add_argument(
        "--prefetch",
        type=at_least(0),
        default=0,
        help="decode N frames ahead in a background thread (default 0: inline)",
    )
    bench.add_argument(
        "--threads",
        type=at_least(0),
        default=0,
        help="CPU threads for onnxruntime and torch-cpu (default 0: all cores)",
    )
    bench.add_argument(
        "--spinning",
        action="store_true",
        help="let onnxruntime's idle threads busy-wait: faster on a quiet machine (123 -> 172 masks/s at batch 1 on "
        "2 cores), much slower when other programs share the cores (the default is off)",
    )
    bench.add_argument(
        "--evidence-threads",
        type=at_least(0),
        default=0,
        help="threads of the evidence check's graph (default 0: all cores)",
    )
    bench.add_argument(
        "--live-videos",
        type=video_file,
        nargs="*",
        default=None,
        help="videos for the live rows (default: the demo clip at 640x480 and at 1280x720; none: no live rows)",
    )
    bench.add_argument(
        "--view-size",
        type=view_size,
        default=(576, 432),
        help="WIDTHxHEIGHT the live views are made at, at most (default 576x432: one view of the app's 2x2 grid)",
    )
    bench.add_argument("--out", type=output_file, default=None, help="write the results as JSON to this file")
    bench.set_defaults(check=_check_bench, usage=bench)

    render = commands.add_parser("render", help="write an explained video")
    render.add_argument("input", type=video_file, help="a video file")
    render.add_argument(
        "-o", "--output", type=video_output, required=True, help=f"the video to write ({', '.join(VIDEO_SUFFIXES)})"
    )
    _model_options(render)
    render.add_argument("--class", dest="target", default="auto", help="class name, index or 'auto' (top-1)")
    render.add_argument("--view", choices=RENDER_VIEWS, default="grid")
    render.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    render.add_argument("--fill", choices=FILLS, default="blur")
    render.add_argument("--opacity", type=fraction, default=0.5, help="of the heat overlay, 0..1 (default 0.5)")
    render.add_argument("--batch", type=at_least(1), default=8, help="frames per batch (default 8)")
    render.add_argument("--max-frames", type=at_least(1), default=None, help="stop after N frames")
    render.add_argument("--box", action="store_true", help="draw the box around mask >= 0.5 on the overlay")
    render.add_argument(
        "--no-caption",
        dest="caption",
        action="store_false",
        help="leave off the caption (the class and its probability on the frame, the preserved and the destroyed view)",
    )
    render.add_argument(
        "--no-csv", dest="table", action="store_false", help="do not write the per-frame table (OUTPUT.csv) beside it"
    )
    _steadiness_options(render)
    render.set_defaults(check=_check_render, usage=render)

    steadiness = commands.add_parser(
        "steadiness",
        help="how steady auto's class and the mask are over time, with and without hysteresis and smoothing",
    )
    steadiness.add_argument("clips", type=video_file, nargs="+", help="video files")
    _model_options(steadiness)
    steadiness.add_argument("--backend", choices=BACKEND_CHOICES, default="onnxruntime")
    steadiness.add_argument("--frames", type=at_least(2), default=300, help="frames per clip (default 300)")
    steadiness.add_argument("--batch", type=at_least(1), default=8, help="frames per batch (default 8)")
    steadiness.add_argument(
        "--alphas", default="1,0.7,0.5,0.3", help="mask averages to measure, 1 = none (default 1,0.7,0.5,0.3)"
    )
    steadiness.add_argument(
        "--margins",
        default="0,0.05,0.1,0.2",
        help="hysteresis margins for the class-switch grid (default 0,0.05,0.1,0.2)",
    )
    steadiness.add_argument("--holds", default="1,2,3,5,8", help="hysteresis holds for the grid (default 1,2,3,5,8)")
    from engine.runtime.temporal import STEADY_HOLD, STEADY_MARGIN

    steadiness.add_argument(
        "--margin",
        type=fraction,
        default=STEADY_MARGIN,
        help=f"the hysteresis measured with masks (default {STEADY_MARGIN})",
    )
    steadiness.add_argument(
        "--hold", type=at_least(1), default=STEADY_HOLD, help=f"frames, with --margin (default {STEADY_HOLD})"
    )
    steadiness.add_argument("--out", type=output_file, default=None, help="write the results as JSON to this file")
    steadiness.set_defaults(check=_check_steadiness, usage=steadiness)
    return parser


def _steadiness_options(parser: argparse.ArgumentParser) -> None:
    from engine.runtime.temporal import SMOOTH_ALPHA, STEADY_HOLD, STEADY_MARGIN

    parser.add_argument(
        "--steady-class",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --class auto: change the class explained only when another leads it clearly for a few frames "
        "(default: on)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=STEADY_MARGIN,
        help=f"by how much (probability) another class must lead (default {STEADY_MARGIN})",
    )
    parser.add_argument(
        "--hold", type=int, default=STEADY_HOLD, help=f"on how many frames in a row (default {STEADY_HOLD})"
    )
    parser.add_argument(
        "--smooth",
        type=float,
        default=SMOOTH_ALPHA,
        metavar="ALPHA",
        help="average the mask over time: M'(t) = ALPHA M(t) + (1 - ALPHA) M'(t-1); 1 = off, smaller = steadier and "
        f"later by (1 - ALPHA) / ALPHA frames (default {SMOOTH_ALPHA:g})",
    )


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", type=model_file, default=None, help="model file (default: the bundled model)")
    group.add_argument(
        "--untrained",
        action="store_true",
        help="a masker of the default architecture with an untrained decoder",
    )


def _bench_rows(text: str) -> tuple[str, ...]:
    from engine.tools.bench import VARIANT_LABELS  # imports torch: only when rows are named

    labels = tuple(label.strip() for label in text.split(",") if label.strip())
    unknown = [label for label in labels if label not in VARIANT_LABELS]
    if unknown or not labels:
        raise ArgumentTypeError(f"unknown rows {unknown or [text]}; choose from {', '.join(VARIANT_LABELS)}")
    return labels


def _check_bench(args: argparse.Namespace) -> None:
    from engine.paths import DEMO_CLIP

    args.model = model_path(args)
    if args.video is None:
        if not DEMO_CLIP.exists():
            raise ArgumentTypeError(f"the bundled demo clip {DEMO_CLIP} is missing; pass --video FILE")
        args.video = DEMO_CLIP
    if args.out is not None:
        check_not_input(args.out, args.video)


def _check_render(args: argparse.Namespace) -> None:
    check_not_input(args.output, args.input)
    if args.box and args.view not in ("grid", "overlay"):
        raise ArgumentTypeError("--box draws on the overlay: use it with --view grid or overlay")
    try:
        steadiness_settings(args)
    except ValueError as error:
        raise ArgumentTypeError(str(error)) from None
    args.model = model_path(args)
    # The untrained masker's black box is the default architecture's, Lite0: an ImageNet-1k classifier.
    classes = imagenet_classes() if args.untrained else model_classes(args.model)
    args.target = target_class(args.target, classes)


def _check_steadiness(args: argparse.Namespace) -> None:
    from engine.runtime.temporal import Steadiness
    from engine.video.steadiness import parse_numbers

    args.model = model_path(args)
    try:
        args.alphas = parse_numbers(args.alphas, float)
        args.margins = parse_numbers(args.margins, float)
        args.holds = parse_numbers(args.holds, int)
        for margin, hold, alpha in itertools.product(
            [*args.margins, args.margin], [*args.holds, args.hold], args.alphas
        ):
            Steadiness(True, margin, hold, alpha)  # the settings' own checks (ValueError)
    except ValueError as error:
        raise ArgumentTypeError(str(error)) from None


def model_path(args: argparse.Namespace) -> Path | None:
    """--model as checked by argparse; else $SALIENCY_MODEL or the bundled model, checked the same way; None for
    --untrained."""
    from engine.paths import DEFAULT_MODEL, default_model_path

    if args.untrained or args.model is not None:
        return args.model
    path = default_model_path()
    if path == DEFAULT_MODEL and not path.exists():
        raise ArgumentTypeError(
            f"the bundled model {path} is missing: pass --model FILE, or --untrained to use an untrained masker "
            f"of the default architecture (fine for speed, meaningless masks)"
        )
    try:
        return model_file(str(path))
    except ArgumentTypeError as error:
        origin = "$SALIENCY_MODEL" if "SALIENCY_MODEL" in os.environ else "the bundled model"
        raise ArgumentTypeError(f"{origin}: {error}") from None


def steadiness_settings(args: argparse.Namespace) -> Steadiness:
    """--steady-class, --margin, --hold, --smooth as engine.runtime.temporal's settings (checked in _check_render)."""
    from engine.runtime.temporal import Steadiness

    return Steadiness(args.steady_class, args.margin, args.hold, args.smooth)
