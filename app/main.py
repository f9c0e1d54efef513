"""Entry point of the desktop app: `python run_app.py` / `saliency-app`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from engine.contract import AUTO, BACKEND_CHOICES

if TYPE_CHECKING:
    from app.state import AppState
    from app.window import MainWindow

DESCRIPTION = """Live saliency for a black-box classifier (Dabkowski & Gal 2017): explain a webcam or a video.

Without --source the app opens the first webcam, or the bundled demo clip when there is none."""

EPILOG = """examples:
  python run_app.py                                   webcam 0, else the demo clip
  python run_app.py --source video.mp4 --class tabby  explain 'tabby' in a video
  python run_app.py --source box.mp4 --backend onnxruntime --benchmark-frames 200
                                                      headless speed measurement, prints frames/s and exits"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="saliency-app",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", help="webcam index (0, 1, ...), a stream URL, or a video / image file")
    parser.add_argument("--model", help="masking model file (.safetensors; default: the bundled model)")
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help="inference backend (default: the last one used, else auto)",
    )
    parser.add_argument(
        "--class",
        dest="target",
        default=None,
        help="class to explain: a name ('tabby'), an index (281) or 'auto' (the top prediction)",
    )
    parser.add_argument(
        "--no-evidence", action="store_true", help="skip the live evidence check (two more black-box passes per frame)"
    )
    parser.add_argument(
        "--benchmark-frames",
        type=int,
        metavar="N",
        default=0,
        help="headless: explain N frames as fast as possible with all four views, print the "
        "frames/s shown, exit (uses default settings, changes none)",
    )
    args = parser.parse_args(argv)
    if args.benchmark_frames < 0:
        parser.error("--benchmark-frames must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchmark = args.benchmark_frames > 0
    if benchmark:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a measurement needs no screen
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app import settings
    from app.benchmark import Benchmark
    from app.scheduler import AUTO_SOURCE
    from app.state import AppState
    from app.window import MainWindow
    from app.worker import PipelineWorker

    if benchmark:
        _quiet_offscreen_notices()
    application = QApplication.instance() or QApplication(sys.argv[:1])
    application.setApplicationName("Live saliency explainer")
    with tempfile.TemporaryDirectory() as scratch:
        if benchmark:  # default settings, and the user's remembered ones stay untouched
            store = QSettings(os.path.join(scratch, "benchmark.ini"), QSettings.Format.IniFormat)
        else:
            store = settings.user_settings()
        state = AppState()
        settings.load_state(store, state)
        # a benchmark runs the pipeline flat out: no real-time pacing of the file
        window = MainWindow(state, store, PipelineWorker(realtime=not benchmark))
        runner = Benchmark(window, args.benchmark_frames) if benchmark else None
        if runner is not None:
            window.problem_reported.connect(runner.fail)
        _apply_arguments(args, state, window)
        _close_on_signals(window)
        window.show()
        window.start(args.source if args.source is not None else AUTO_SOURCE)
        code = application.exec()
    return runner.exit_code if runner is not None else code


def _close_on_signals(window: MainWindow) -> None:
    """Ctrl+C in the terminal (or a TERM from the system) closes the window properly: the worker stops and the
    settings are saved. Qt's event loop runs C++, so a timer lets Python look at its signals now and then."""
    import signal

    from PyQt6.QtCore import QTimer

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda _number, _frame: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def _quiet_offscreen_notices() -> None:
    """The offscreen platform says "does not support propagateSizeHints()" for every window: not news."""
    from PyQt6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(kind: QtMsgType, _context: object, message: str | None) -> None:
        if message and "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def _apply_arguments(args: argparse.Namespace, state: AppState, window: MainWindow) -> None:
    """Command-line values win over remembered ones; a bad --class is reported and the app goes on."""
    from engine.classes import resolve_class
    from engine.errors import UnknownClassError

    state.update(model_path=args.model)
    if args.no_evidence:
        state.update(evidence=False)
    if args.backend is not None:
        state.update(backend=args.backend)
    if args.target is None:
        return
    if args.target.strip().lower() == "auto":
        state.update(target=AUTO)
        return
    try:
        state.update(target=resolve_class(args.target, window.classes))
    except UnknownClassError as error:
        state.update(target=AUTO)
        window.report_problem("Unknown class", f"--class: {error}. Explaining the top prediction instead.")


if __name__ == "__main__":
    sys.exit(main())
