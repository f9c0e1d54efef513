"""`python -m engine build|bench|render|steadiness|info` (also installed as `saliency-engine`)."""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import SaliencyError

if TYPE_CHECKING:
    from engine.models.blackbox import BlackBox
    from engine.models.masker import Masker
    from engine.temporal import Steadiness

EPILOG = """examples:
  python -m engine info
  python -m engine build assets/models/lite0-default/lite0-default.safetensors --backend all
  python -m engine bench --untrained --frames 120 --out out/bench.json
  python -m engine render clip.mp4 -o explained.mp4 --class auto --view grid
  python -m engine steadiness clip.mp4 --frames 300
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from engine.backends import CHOICES

    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Build, benchmark and run masking models (real-time saliency for black-box classifiers).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="backends available here (and why not), cache folder, default model")
    info.set_defaults(run=_info)

    build = commands.add_parser("build", help="export to ONNX (FP32, FP16), check the exports, build engines")
    build.add_argument("model", type=Path, help="a model file (.safetensors with its card)")
    build.add_argument("--backend", default="auto", help=f"auto, all, or one of {', '.join(CHOICES[1:])}")
    build.add_argument("--out", type=Path, default=None, help="folder for the files (default: the user cache)")
    build.set_defaults(run=_build)

    bench = commands.add_parser("bench", help="masks/s and end-to-end frames/s per backend, table + JSON")
    _model_options(bench)
    from engine.bench import VARIANT_LABELS

    bench.add_argument("--backends", default=",".join(VARIANT_LABELS), help="comma-separated (default: all)")
    bench.add_argument("--video", type=Path, default=None, help="default: $SALIENCY_DATA/videos/box.mp4")
    bench.add_argument("--frames", type=int, default=120, help="frames per end-to-end run (default 120)")
    bench.add_argument("--repeats", type=int, default=3, help="runs per figure; median and spread (default 3)")
    bench.add_argument("--seconds", type=float, default=1.0, help="minimum time per model-only run (default 1)")
    bench.add_argument("--evidence", action="store_true", help="also run the live evidence check end to end")
    bench.add_argument(
        "--prefetch", type=int, default=0, help="decode N frames ahead in a background thread (default 0: inline)"
    )
    bench.add_argument(
        "--threads", type=int, default=0, help="CPU threads for onnxruntime and torch-cpu (default 0: all cores)"
    )
    bench.add_argument(
        "--spinning",
        action="store_true",
        help="let onnxruntime's idle threads busy-wait: faster on a quiet machine (123 -> 172 masks/s at batch 1 on "
        "2 cores), much slower when other programs share the cores (the default is off)",
    )
    bench.add_argument("--out", type=Path, default=None, help="write the results as JSON to this file")
    bench.set_defaults(run=_bench)

    render = commands.add_parser("render", help="write an explained video")
    render.add_argument("input", type=Path, help="a video file")
    render.add_argument("-o", "--output", type=Path, required=True, help="the .mp4 to write")
    _model_options(render)
    render.add_argument("--class", dest="target", default="auto", help="class name, index or 'auto' (top-1)")
    from engine.render import RENDER_VIEWS

    render.add_argument("--view", choices=RENDER_VIEWS, default="grid")
    render.add_argument("--backend", choices=CHOICES, default="auto")
    render.add_argument("--fill", choices=("blur", "grey", "black"), default="blur")
    render.add_argument("--opacity", type=float, default=0.5)
    render.add_argument("--batch", type=int, default=8, help="frames per batch (default 8)")
    render.add_argument("--max-frames", type=int, default=None)
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
    render.set_defaults(run=_render, parser=render)

    steadiness = commands.add_parser(
        "steadiness",
        help="how steady auto's class and the mask are over time, with and without hysteresis and smoothing",
    )
    steadiness.add_argument("clips", type=Path, nargs="+", help="video files")
    _model_options(steadiness)
    steadiness.add_argument("--backend", choices=CHOICES, default="onnxruntime")
    steadiness.add_argument("--frames", type=int, default=300, help="frames per clip (default 300)")
    steadiness.add_argument("--batch", type=int, default=8, help="frames per batch (default 8)")
    steadiness.add_argument(
        "--alphas", default="1,0.7,0.5,0.3", help="mask averages to measure, 1 = none (default 1,0.7,0.5,0.3)"
    )
    steadiness.add_argument(
        "--margins",
        default="0,0.05,0.1,0.2",
        help="hysteresis margins for the class-switch grid (default 0,0.05,0.1,0.2)",
    )
    steadiness.add_argument("--holds", default="1,2,3,5,8", help="hysteresis holds for the grid (default 1,2,3,5,8)")
    from engine.temporal import STEADY_HOLD, STEADY_MARGIN

    steadiness.add_argument(
        "--margin",
        type=float,
        default=STEADY_MARGIN,
        help=f"the hysteresis measured with masks (default {STEADY_MARGIN})",
    )
    steadiness.add_argument(
        "--hold", type=int, default=STEADY_HOLD, help=f"frames, with --margin (default {STEADY_HOLD})"
    )
    steadiness.add_argument("--out", type=Path, default=None, help="write the results as JSON to this file")
    steadiness.set_defaults(run=_steadiness, parser=steadiness)
    return parser


def _steadiness_options(parser: argparse.ArgumentParser) -> None:
    from engine.temporal import SMOOTH_ALPHA, STEADY_HOLD, STEADY_MARGIN

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
    group.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    group.add_argument(
        "--untrained",
        action="store_true",
        help="a masker of the default architecture with an untrained decoder",
    )


def _load(args: argparse.Namespace) -> tuple[Masker, BlackBox, str]:
    """(masker, black box, name) from --model / --untrained / the bundled default."""
    from engine.api import load_masker
    from engine.paths import default_model_path

    if args.untrained:
        import torch

        from engine.models.blackbox import create_blackbox
        from engine.models.encoders import create_encoder
        from engine.models.masker import Masker, MaskerConfig

        blackbox = create_blackbox(MaskerConfig().encoder)
        torch.manual_seed(0)
        return Masker(MaskerConfig(), create_encoder(MaskerConfig().encoder, blackbox)), blackbox, "untrained"
    path = args.model or default_model_path()
    if args.model is None and not path.exists():
        raise SaliencyError(
            f"the bundled model {path} is missing: pass --model FILE, or --untrained to use an untrained masker "
            f"of the default architecture (fine for speed, meaningless masks)"
        )
    model = load_masker(path)
    return model.masker, model.blackbox, Path(path).stem


def _info(args: argparse.Namespace) -> int:
    from engine.backends import BACKEND_NAMES, availability, select_backend
    from engine.paths import cache_dir, data_root, default_model_path

    print("backends (auto picks the first available):")
    for name in BACKEND_NAMES:
        status = availability(name)
        print(f"  {name:<12} {'yes' if status.ok else 'no '}  {status.reason}")
    print(f"auto: {select_backend('auto')[0]}")
    model = default_model_path()
    print(f"default model: {model} ({'present' if model.exists() else 'missing'})")
    print(f"cache: {cache_dir()}")
    print(f"data: {data_root()} ({'present' if data_root().exists() else 'missing'})")
    return 0


def _build(args: argparse.Namespace) -> int:
    from engine.api import load_masker
    from engine.build import build, resolve_backends
    from engine.graphs import model_graphs

    model = load_masker(args.model)
    graphs = model_graphs(model.masker, model.blackbox, name=Path(args.model).stem)
    build(graphs, resolve_backends(args.backend), args.out)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from engine.bench import VARIANT_LABELS, run_bench, table, write_json
    from engine.paths import data_root

    labels = tuple(label.strip() for label in args.backends.split(",") if label.strip())
    unknown = set(labels) - set(VARIANT_LABELS)
    if unknown:
        raise SaliencyError(f"unknown backends {sorted(unknown)}; choose from {', '.join(VARIANT_LABELS)}")
    video = args.video or data_root() / "videos" / "box.mp4"
    masker, blackbox, name = _load(args)
    report = run_bench(
        masker,
        blackbox,
        name,
        labels,
        video,
        args.frames,
        args.repeats,
        args.seconds,
        args.evidence,
        args.prefetch,
        args.threads,
        log=lambda line: print(line, file=sys.stderr),
        spinning=args.spinning,
    )
    print(table(report))
    if args.out:
        print(f"results: {write_json(report, args.out)}")
    return 0


def _steadiness_settings(args: argparse.Namespace) -> Steadiness:
    """--steady-class, --margin, --hold, --smooth as engine.temporal's settings; bad values: usage error (exit 2)."""
    from engine.temporal import Steadiness

    parser: argparse.ArgumentParser = args.parser
    try:
        return Steadiness(args.steady_class, args.margin, args.hold, args.smooth)
    except ValueError as error:
        parser.error(str(error))


def _render(args: argparse.Namespace) -> int:
    from engine.api import Explainer
    from engine.render import render

    steadiness = _steadiness_settings(args)
    if args.box and args.view not in ("grid", "overlay"):
        args.parser.error("--box draws on the overlay: use it with --view grid or overlay")
    masker, blackbox, name = _load(args)
    with Explainer.from_masker(
        masker,
        blackbox,
        args.backend,
        name=name,
        fill=args.fill,
        opacity=args.opacity,
        batch_sizes=(1, args.batch),
    ) as explainer:
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
    from engine.steadiness import measure_clips, parse_numbers, tables, write_json
    from engine.temporal import Steadiness

    parser: argparse.ArgumentParser = args.parser
    try:
        alphas = parse_numbers(args.alphas, float)
        margins = parse_numbers(args.margins, float)
        holds = parse_numbers(args.holds, int)
        for margin, hold, alpha in itertools.product([*margins, args.margin], [*holds, args.hold], alphas):
            Steadiness(True, margin, hold, alpha)  # the settings' own checks (ValueError)
    except ValueError as error:
        parser.error(str(error))
    if args.frames < 2 or args.batch < 1:
        parser.error("--frames must be at least 2 and --batch at least 1")
    masker, blackbox, name = _load(args)
    report = measure_clips(
        masker,
        blackbox,
        name,
        args.clips,
        backend=args.backend,
        frames=args.frames,
        batch=args.batch,
        alphas=alphas,
        margins=margins,
        holds=holds,
        steady=(args.margin, args.hold),
        log=lambda line: print(line, file=sys.stderr),
    )
    print(tables(report))
    if args.out:
        print(f"results: {write_json(report, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
