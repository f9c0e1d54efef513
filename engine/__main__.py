"""`python -m engine build|bench|render|info` (also installed as `saliency-engine`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import SaliencyError

if TYPE_CHECKING:
    from engine.models.blackbox import BlackBox
    from engine.models.masker import Masker

EPILOG = """examples:
  python -m engine info
  python -m engine build assets/models/lite0-default/lite0-default.safetensors --backend all
  python -m engine bench --untrained --frames 120 --out out/bench.json
  python -m engine render clip.mp4 -o explained.mp4 --class auto --view grid
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
    render.set_defaults(run=_render)
    return parser


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
    from engine.backends import backend_report
    from engine.paths import cache_dir, data_root, default_model_path

    print("\n".join(backend_report()))
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


def _render(args: argparse.Namespace) -> int:
    from engine.api import Explainer
    from engine.render import render

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
            result = render(explainer, args.input, args.output, args.target, args.view, args.batch, args.max_frames)
        except KeyboardInterrupt:
            print(f"interrupted: {args.output} holds the frames written so far", file=sys.stderr)
            return 130
    print(f"wrote {result.frames} frames to {result.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
