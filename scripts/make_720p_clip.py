"""Make the 720p demo clip from box.mp4: the middle 16:9 band (640x360), scaled to 1280x720, H.264 at about
1 Mbit/s with a keyframe every 30 frames (one a second, as phones write), so that seeking in it costs what it costs
in a phone's clip. `python scripts/make_720p_clip.py [SOURCE] [OUTPUT]` (defaults: the bundled clips)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 720)
KEYFRAME_EVERY = 30


def main(source: Path, output: Path) -> None:
    with av.open(str(source)) as reader, av.open(str(output), mode="w", format="mp4") as writer:
        rate = reader.streams.video[0].average_rate or Fraction(30)
        stream = writer.add_stream("libx264", rate=rate)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 1_000_000
        # A fixed keyframe interval: no scene-cut keyframes in between, none further apart.
        stream.options = {"g": str(KEYFRAME_EVERY), "keyint_min": str(KEYFRAME_EVERY), "sc_threshold": "0"}
        for frame in reader.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            height, width = image.shape[:2]
            band = width * 9 // 16
            top = (height - band) // 2
            scaled: np.ndarray = cv2.resize(image[top : top + band], SIZE, interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(scaled, format="rgb24")):
                writer.mux(packet)
        for packet in stream.encode():
            writer.mux(packet)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        Path(arguments[0]) if arguments else ROOT / "assets" / "demo" / "box.mp4",
        Path(arguments[1]) if len(arguments) > 1 else ROOT / "assets" / "demo" / "box-720p.mp4",
    )
