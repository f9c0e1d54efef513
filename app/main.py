"""Entry point of the desktop app: `python run_app.py` / `saliency-app`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from app import desktop_entry
from app.playback.frame_memory import cap_malloc_arenas
from engine.contract import BACKEND_CHOICES, ClassInfo
from engine.tools.arguments import (
    ArgumentTypeError,
    Parser,
    at_least,
    check_not_input,
    model_classes,
    model_file,
    output_file,
    target_class,
)

if TYPE_CHECKING:
    from PyQt6.QtCore import QSettings

    from app.explaining.loading import ModelLoad
    from app.state import AppState
    from app.window import MainWindow

DESCRIPTION = """Live saliency for a black-box classifier (Dabkowski & Gal 2017): explain a webcam or a video.

Without --source the app opens the camera chosen last in the Camera menu (in its mode; at first webcam 0), or the
bundled demo clip when it does not open."""

EPILOG = """examples:
  python run_app.py                                   webcam 0, else the demo clip
  python run_app.py --source video.mp4 --class tabby  explain 'tabby' in a video
  python run_app.py --source camera:0@1280x720:30     webcam 0 at 1280x720, 30 frames/s (or the nearest it has)
  python run_app.py --source rtsp://192.168.1.20/live a network camera's stream
  python run_app.py --source box.mp4 --backend onnxruntime --benchmark-frames 200
                                                      headless speed measurement, prints frames/s and exits
  python run_app.py --source box.mp4 --record out.mp4 record the live view from the start (Ctrl+R stops)
  saliency-app --install-desktop-entry                add the app to the desktop's application menu (this user)"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, each checked before the app starts: a bad one is one line on stderr and exit status 2.

    `target` comes back resolved against the class list of the model's black box (read from the model's card,
    without torch): a class index, AUTO, or None when --class is not given (the remembered choice stays)."""
    parser = Parser(
        prog="saliency-app",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        type=_source,
        help="a webcam: its index (0, 1, ...), or camera:INDEX@WIDTHxHEIGHT:FPS for a size and frame rate "
        "(camera:0@1280x720:30; camera:0@1280x720 leaves the rate to the camera); a stream's address (udp://, "
        "tcp://, rtsp://, http(s)://); or a video / image file",
    )
    parser.add_argument(
        "--model",
        type=model_file,
        help="masking model: a .safetensors file, or an exported model folder (saliency-engine export) or its "
        ".card.json (default: the last one opened, else the bundled one)",
    )
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
        type=at_least(0),
        metavar="N",
        default=0,
        help="headless: explain N frames as fast as possible with all four views, print the "
        "frames/s shown, exit (uses default settings, changes none)",
    )
    parser.add_argument(
        "--benchmark-seeks",
        type=at_least(0),
        metavar="N",
        default=0,
        help="headless: paused on the video, jump to N random frames and change the fill now and then, one at a "
        "time as a person would, print how long each took to reach the screen, exit",
    )
    parser.add_argument(
        "--record",
        type=_recording,
        metavar="PATH",
        help="record the live view as shown (with its caption, as File > Record live view does) to PATH (.mp4) from "
        "the first frame; with --benchmark-frames, while measuring",
    )
    parser.add_argument(
        "--report-startup",
        action="store_true",
        help="print, once the window has painted its first explained frame, how long that took from the start of "
        "the process (and to the first picture, to the model ready); the app goes on as usual",
    )
    desktop = parser.add_mutually_exclusive_group()
    desktop.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add the app to the desktop's application menu for this user (a launcher that runs this install and "
        "an icon, under $XDG_DATA_HOME, default ~/.local/share), print where, exit; needs no display",
    )
    desktop.add_argument(
        "--uninstall-desktop-entry",
        action="store_true",
        help="remove what --install-desktop-entry wrote (nothing else), print what, exit",
    )
    args = parser.parse_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        _refuse_window_options(parser, args)
    if args.record is not None and args.source is not None and Path(args.source).is_file():
        try:
            check_not_input(args.record, Path(args.source))
        except ArgumentTypeError as error:
            parser.error(f"argument --record: {error}")
    if args.target is not None:
        try:
            args.target = target_class(args.target, _classes(args.model))
        except ArgumentTypeError as error:
            parser.error(str(error))
    return args


def _refuse_window_options(parser: Parser, args: argparse.Namespace) -> None:
    """The desktop-entry flags open no window: an option for the window beside them is a mistake, not ignored."""
    flag = "--install-desktop-entry" if args.install_desktop_entry else "--uninstall-desktop-entry"
    given = {
        "--source": args.source is not None,
        "--model": args.model is not None,
        "--backend": args.backend is not None,
        "--class": args.target is not None,
        "--no-evidence": args.no_evidence,
        "--benchmark-frames": args.benchmark_frames > 0,
        "--benchmark-seeks": args.benchmark_seeks > 0,
        "--record": args.record is not None,
        "--report-startup": args.report_startup,
    }
    others = [option for option, present in given.items() if present]
    if others:
        parser.error(f"argument {flag}: not allowed with {', '.join(others)} (it only writes the launcher and exits)")


def _source(text: str) -> str:
    """A webcam or a stream URL, checked for its form only (the app opens it and says when it does not answer); a
    file must open as a video or an image."""
    from app.source_specs import is_stream, parse_camera, stream_problem

    try:
        camera = parse_camera(text)
    except ValueError as error:
        raise ArgumentTypeError(str(error)) from None
    if camera is not None:
        return str(camera)
    if is_stream(text):
        problem = stream_problem(text)
        if problem is not None:
            raise ArgumentTypeError(f"{text!r}: {problem}")
        return text.strip()
    from app.playback.sources import open_source  # OpenCV: loaded only when a file is checked
    from engine.errors import VideoError

    try:
        open_source(text, background=False).close()  # (opened, its first frame decoded: no index, no seeker)
    except VideoError as error:
        raise ArgumentTypeError(str(error)) from None
    return text


def _recording(text: str) -> Path:
    """An .mp4 to record to, in a folder that is writable (or can be made)."""
    if Path(text).suffix.lower() != ".mp4":
        raise ArgumentTypeError(f"{text!r}: a recording is an MP4; the name must end in .mp4")
    return output_file(text)


def _classes(model: Path | None) -> tuple[ClassInfo, ...]:
    """What --class resolves against: the classes of the model's black box. Without --model, those of the default
    model; when that is missing or broken the app says so once it starts, and the window offers ImageNet's classes
    until a model loads, so --class is checked against those."""
    from engine.classes import imagenet_classes
    from engine.paths import default_model_path

    if model is not None:
        return model_classes(model)
    try:
        return model_classes(default_model_path())
    except ArgumentTypeError:
        return imagenet_classes()


def main(argv: list[str] | None = None) -> int:
    cap_malloc_arenas()  # before any thread starts (checking --source decodes a frame): app/playback/frame_memory.py
    args = parse_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:  # before any window code: no Qt, no display
        return desktop_entry.run(install_it=args.install_desktop_entry)
    benchmark = args.benchmark_frames > 0 or args.benchmark_seeks > 0
    if benchmark:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a measurement needs no screen
    elif _no_display():
        print(
            "saliency-app: error: no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set): "
            "start it in a desktop session or over `ssh -X`; headless, --benchmark-frames N measures the speed",
            file=sys.stderr,
        )
        return 1
    elif (missing := _missing_xcb_libraries()) is not None:
        print(f"saliency-app: error: {missing}", file=sys.stderr)
        return 1
    from PyQt6.QtCore import QSettings

    from app import settings
    from app.explaining.loading import ModelLoad
    from app.explaining.mailbox import ExplainParams, ModelSpec
    from app.state import AppState

    with tempfile.TemporaryDirectory() as scratch:
        if benchmark:  # default settings, and the user's remembered ones stay untouched
            store = QSettings(os.path.join(scratch, "benchmark.ini"), QSettings.Format.IniFormat)
        else:
            store = settings.user_settings()
        state = AppState()
        settings.load_state(store, state)
        _apply_arguments(args, state)
        # The model loads while the window's modules are imported and the window is built (the pipeline takes it
        # when it asks for the same model): the first explained frame comes that much sooner.
        preload = ModelLoad(ModelSpec.of(state), ExplainParams.of(state))
        return _run_window(args, state, store, preload)


def _run_window(args: argparse.Namespace, state: AppState, store: QSettings, preload: ModelLoad) -> int:
    """Open the window on the state and settings main read, with the model's load started; run until it closes."""
    from PyQt6.QtCore import QEvent
    from PyQt6.QtGui import QGuiApplication
    from PyQt6.QtWidgets import QApplication

    from app.benchmark import Benchmark, SeekBenchmark
    from app.explaining.scheduler import AUTO_SOURCE
    from app.explaining.worker import PipelineWorker
    from app.startup import StartupClock, report_when_explained
    from app.window import MainWindow

    benchmark = args.benchmark_frames > 0 or args.benchmark_seeks > 0
    if benchmark:
        _quiet_offscreen_notices()
    application = QApplication.instance() or QApplication(sys.argv[:1])
    # The launcher of --install-desktop-entry finds the window by these: the application name is its WM_CLASS on X11,
    # the desktop file name its app id on Wayland (else "python3"), so docks show the icon and group the window.
    application.setApplicationName(desktop_entry.APPLICATION_NAME)
    QGuiApplication.setDesktopFileName(desktop_entry.DESKTOP_ID)
    # a speed benchmark runs the pipeline flat out: no real-time pacing of the file
    window = MainWindow(state, store, PipelineWorker(realtime=args.benchmark_frames == 0, preload=preload))
    startup = StartupClock(window)
    if args.report_startup:
        report_when_explained(startup)
    runner: Benchmark | SeekBenchmark | None = None
    if args.benchmark_frames:
        runner = Benchmark(window, args.benchmark_frames, startup)
    elif args.benchmark_seeks:
        runner = SeekBenchmark(window, args.benchmark_seeks)
    if runner is not None:
        window.problem_reported.connect(runner.fail)
    _close_on_signals(window)
    if benchmark:  # the offscreen screen is small: measure the window at the size it opens at on a 1920x1080 desktop
        window.resize(1500, 950)
    window.show()
    if args.record is not None:
        window.recording.start(args.record)
    window.start(args.source if args.source is not None else AUTO_SOURCE)
    code = application.exec()
    # Destroy the window (and every QObject under it) now, while the application and the engine still exist:
    # left to Python's teardown, the order is arbitrary and Qt crashed in it (1 exit in 4 after a model failed)
    window.deleteLater()
    application.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    preload.abandon(wait=True)  # (taken or abandoned by the pipeline already, unless it never ran: a load in C code
    # when the interpreter ends aborts it)
    return runner.exit_code if runner is not None else code


def _no_display() -> bool:
    """On Linux Qt needs an X11 or Wayland display unless a platform is named (QT_QPA_PLATFORM=offscreen, ...);
    without one it aborts with several lines about plugins."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _missing_xcb_libraries() -> str | None:
    """On X11 (the xcb platform, Qt's choice when DISPLAY is set): the message naming the system libraries that Qt's
    plugin lacks, or None when nothing is missing (or another platform is used)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform not in ("", "xcb") or not os.environ.get("DISPLAY"):
        return None
    from app.system_libraries import missing_libraries, missing_message, xcb_plugin

    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    return missing_message(missing) if missing else None


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


def _apply_arguments(args: argparse.Namespace, state: AppState) -> None:
    """Command-line values win over remembered ones (all checked by parse_args)."""
    if args.model is not None:  # else the model remembered from the last session (or the bundled one)
        state.update(model_path=str(args.model))
    if args.no_evidence:
        state.update(evidence=False)
    if args.backend is not None:
        state.update(backend=args.backend)
    if args.target is not None:
        state.update(target=args.target)  # a class index or AUTO, resolved by parse_args


if __name__ == "__main__":
    sys.exit(main())
