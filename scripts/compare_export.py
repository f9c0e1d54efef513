"""Does File > Export give what the app showed and saved? Plays a clip in the real window (offscreen) as a user would
(in real time, to its end), lets the evidence timeline's background pass finish, saves the timeline's CSV, exports
with the same settings, and compares the two tables frame by frame: the class, and each number's largest difference.

    python scripts/compare_export.py CLIP [--flat-out] [--class INDEX]

`--flat-out` plays without the file's clock (every frame explained, as `--benchmark-frames` does). Uses the bundled
model on ONNX Runtime and the app's default settings ("auto", steady class and mask average on, evidence on); the
files are left in a temporary folder, printed at the end. A measurement, not a test: tests/app/test_export_as_shown.py
is the test.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NUMBERS = ("p_frame", "p_preserved", "p_destroyed", "mask_mean", "mask_share")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--flat-out", action="store_true", help="no real-time pacing: every frame explained")
    parser.add_argument("--class", dest="target", type=int, default=-1, help="a class index (default: auto)")
    args = parser.parse_args()

    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.explaining.worker import PipelineWorker
    from app.state import AppState
    from app.window import MainWindow

    folder = Path(tempfile.mkdtemp(prefix="compare-export-"))
    application = QApplication(sys.argv[:1])
    store = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    state = AppState(backend="onnxruntime", evidence=True, loop=False, target=args.target)
    window = MainWindow(state, store, PipelineWorker(realtime=not args.flat_out))
    window.resize(1500, 950)
    window.show()
    window.start(str(args.clip))

    def wait(ready: Callable[[], bool], what: str, seconds: float = 1800) -> None:
        end = time.monotonic() + seconds
        while not ready():
            application.processEvents()
            time.sleep(0.005)
            if time.monotonic() > end:
                raise SystemExit(f"gave up waiting for {what}")

    started = time.monotonic()
    wait(lambda: state.frame_index is not None and state.playing, "the first frame")
    wait(lambda: not state.playing, "the end of the clip")
    print(
        f"played to frame {state.frame_index} in {time.monotonic() - started:.1f} s; "
        f"frames dropped {window.worker.stats.dropped}"
    )
    keeper = window.timeline_keeper
    time.sleep(1.0)
    wait(
        lambda: (
            keeper.explainer_pass is not None and keeper.explainer_pass.job is None and keeper.timeline.filled() > 0
        ),
        "the timeline's background pass",
    )
    saved = keeper.save_csv(folder / "app.csv")
    assert saved is not None, window.problems
    job = window.exporter.export(folder / "export.mp4")
    assert job is not None, window.problems
    wait(lambda: job.isFinished() and job.outcome is not None, "the export")
    window.close()
    application.processEvents()

    app, export = _table(saved), _table(folder / "export.csv")
    same_class = [
        index for index in app if index in export and app[index]["class_index"] == export[index]["class_index"]
    ]
    print(f"frames: app's CSV {len(app)}, export {len(export)}, same class {len(same_class)}")
    for name in NUMBERS:
        differences = sorted(
            (
                (abs(float(app[i][name]) - float(export[i][name])), i)
                for i in same_class
                if app[i][name] and export[i][name]
            ),
            reverse=True,
        )
        if not differences:
            continue
        worst, frame = differences[0]
        over = sum(difference > 0.01 for difference, _ in differences)
        print(
            f"  {name:<12} largest difference {worst:.4f} (frame {frame}: app {app[frame][name]}, export "
            f"{export[frame][name]}); frames differing by more than 0.01: {over}"
        )
    print(f"files in {folder}")
    return 0


def _table(path: Path) -> dict[int, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return {int(row["frame"]): row for row in csv.DictReader(file)}


if __name__ == "__main__":
    sys.exit(main())
