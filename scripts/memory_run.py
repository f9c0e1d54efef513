"""The app's resident memory over a long run: a video looped in real time for some minutes, then jumps, as a user
would (issue 25's budget: app/playback/frame_memory.py).

    python scripts/memory_run.py CLIP [--minutes 10] [--seeks 60] [--backend onnxruntime]

Builds the app's own window in this process (the window, the pipeline worker and the timeline's pass, as `saliency-app`
does, with the C allocator capped as main caps it), plays CLIP looping with the live evidence on, prints the
resident size (VmRSS) every 30 s, pauses, jumps to `--seeks` random frames (each waited for until it is explained),
and prints the peak and the last resident size. Needs a display or QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.playback.frame_memory import cap_malloc_arenas  # noqa: E402


def resident_mb() -> float:
    """This process's resident set (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeks", type=int, default=60)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    cap_malloc_arenas()

    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.explaining.worker import PipelineWorker
    from app.state import AppState
    from app.window import MainWindow

    application = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as scratch:
        store = QSettings(os.path.join(scratch, "memory.ini"), QSettings.Format.IniFormat)
        state = AppState(backend=args.backend, evidence=True, loop=True)
        window = MainWindow(state, store, PipelineWorker(realtime=True))
        window.resize(1500, 950)
        window.show()
        window.start(str(args.clip))
        started, peak = time.monotonic(), 0.0

        def wait(seconds: float, until=lambda: False) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not until():
                application.processEvents()
                time.sleep(0.005)

        next_print = 0.0
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            wait(1.0)
            peak = max(peak, resident_mb())
            if elapsed >= next_print:
                timeline = window.timeline_keeper.timeline
                print(
                    f"{elapsed / 60:5.1f} min  resident {resident_mb():6.0f} MB  frame {state.frame_index:4d}"
                    f"  timeline {len(timeline.final)} of {timeline.frame_count} computed in order",
                    flush=True,
                )
                next_print += 30
        looped = resident_mb()
        state.update(playing=False)
        generator = random.Random(0)
        for _ in range(args.seeks):
            target = generator.randrange(max(state.frame_count, 1))
            window.seek(target)
            wait(
                20.0,
                lambda: window.current_result is not None and window.current_result.frame_index == target,  # noqa: B023
            )
            peak = max(peak, resident_mb())
        wait(2.0)
        print(
            f"after {args.minutes:g} min looping: {looped:.0f} MB; after {args.seeks} jumps: {resident_mb():.0f} MB;"
            f" peak {peak:.0f} MB (the budget: 800 MB)"
        )
        window.close()
        wait(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
