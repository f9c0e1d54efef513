"""What a jump to a random frame costs in a video file: OpenCV's seek against app.playback.file_seeker's (PyAV,
unreferenced frames before the target left out), same frames, same run; and whether both give the sequential decode's
pixels.

    python scripts/seek_costs.py assets/demo/box-720p.mp4 [--jumps 30]

Run it on a quiet machine (or beside `sh -c 'while :; do :; done'` loops to see it under load); the app's whole
answer (decode, explain, paint) is `python run_app.py --source CLIP --benchmark-seeks 60`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.playback.file_seeker import FileSeeker  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--jumps", type=int, default=30, help="random jumps (30)")
    args = parser.parse_args()

    capture = cv2.VideoCapture(str(args.video))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    rng = random.Random(0)
    targets = [rng.randrange(len(frames)) for _ in range(args.jumps)]

    def opencv(index: int) -> np.ndarray | None:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        return capture.read()[1]

    seeker = FileSeeker(args.video)
    seeker.wait_kept(120)
    print(f"{args.video.name}: {len(frames)} frames; FileSeeker usable: {seeker.usable}, frames kept: {seeker.kept}")
    for name, jump in (("OpenCV", opencv), ("FileSeeker", seeker.seek)):
        if name == "FileSeeker" and not seeker.usable:
            continue
        times, wrong = [], 0
        for index in targets:
            start = time.perf_counter()
            image = jump(index)
            times.append((time.perf_counter() - start) * 1000)
            wrong += image is None or not np.array_equal(image, frames[index])
        print(
            f"  {name:<10} median {statistics.median(times):6.1f} ms, worst {max(times):6.1f} ms, "
            f"{wrong} of {len(targets)} jumps gave other pixels than the sequential decode"
        )
    seeker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
