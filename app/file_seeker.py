"""FileSeeker: a jump to any frame of a video file that decodes only what the frame needs (PyAV).

A jump has to decode from the keyframe before the frame asked for. OpenCV's seek decodes every frame on the way;
FFmpeg can leave out the frames that no other frame refers to (the B-frames of most H.264 files, 60% of the 720p demo
clip's frames) as long as they come before the one asked for. Measured on assets/demo/box-720p.mp4 (keyframes a
second apart), 30 random jumps, same run: OpenCV 75 ms median, PyAV with one thread 42 ms, PyAV leaving out
unreferenced frames 28 ms; with two frame threads 41 ms (threads wait for each other on a chain of references).
(/work/scratch/seek/exp.py in the session notes; `--benchmark-seeks` measures the app's whole answer.)

That needs each frame's presentation timestamp, which some files do not have: box.mp4's packets carry decode-order
times only (pts == dts with B-frames), and FFmpeg hands its frames out with times that go back and forth. `usable`
says whether the file's times can be trusted (distinct, and not decode-order times on a file with B-frames); the video
source also checks every answer against the frame's fingerprint and stops using the seeker on a file where one is
wrong. Frames come as OpenCV decodes them (BGR24 through the same FFmpeg conversion; equal on the demo clips and
vtest.avi, checked in tests/app/test_file_seeker.py).

After a jump, `read` goes on from the frame after it (the decoder is there already), so playback after a jump needs
no second seek.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream


class FileSeeker:
    """Exact jumps in `path` by presentation timestamp. Raises OSError / av.FFmpegError when PyAV cannot open it."""

    def __init__(self, path: str | Path) -> None:
        import av  # here: the app starts without it, and a file never jumped in never opens it

        self.path = Path(path)
        self._container: InputContainer = av.open(str(self.path))
        self._stream: VideoStream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = 1  # the fastest jump (see above); the source decodes one at a time
        self._times, self.usable = self._presentation_times()
        self._frames: Iterator[VideoFrame] | None = None  # the decoder's frames from the last jump on

    @property
    def frame_count(self) -> int:
        return len(self._times)

    def seek(self, index: int) -> np.ndarray | None:
        """Frame `index` as (H, W, 3) uint8 BGR, or None when the file has no such frame (or no longer decodes)."""
        if not self.usable or not 0 <= index < len(self._times):
            return None
        target = self._times[index]
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._decoded_from(target)
        return self.read()

    def read(self) -> np.ndarray | None:
        """The frame after the last one handed out (BGR), None at the end of the file or before any jump."""
        if self._frames is None:
            return None
        frame = next(self._frames, None)
        if frame is None:
            self._frames = None
            return None
        return frame.to_ndarray(format="bgr24")

    def skip(self, count: int) -> int:
        """Pass over up to `count` frames without converting them; how many were there."""
        passed = 0
        while passed < count and self._frames is not None and next(self._frames, None) is not None:
            passed += 1
        return passed

    def close(self) -> None:
        self._frames = None
        self._container.close()

    # -- inside ---------------------------------------------------------------------------------------------------
    def _decoded_from(self, target: int) -> Iterator[VideoFrame]:
        """Frames in presentation order from the one at `target` on (the container is at a keyframe before it).
        Packets shown before `target` are decoded only when another frame refers to them."""
        context = self._stream.codec_context
        try:
            for packet in self._container.demux(self._stream):
                before = packet.pts is not None and packet.pts < target
                context.skip_frame = "NONREF" if before else "DEFAULT"
                for frame in packet.decode():
                    if frame.pts is not None and frame.pts >= target:
                        yield frame
        finally:
            context.skip_frame = "DEFAULT"

    def _presentation_times(self) -> tuple[list[int], bool]:
        """Every frame's presentation time in order (from the packets: no decoding) and whether they can be trusted."""
        times: list[int] = []
        reordered = False  # some packet is shown at another time than it is decoded: times are presentation times
        for packet in self._container.demux(self._stream):
            if packet.pts is None:
                continue
            times.append(packet.pts)
            reordered = reordered or (packet.dts is not None and packet.dts != packet.pts)
        self._container.seek(0, stream=self._stream)
        times.sort()
        distinct = len(set(times)) == len(times) and bool(times)
        b_frames = bool(self._stream.codec_context.has_b_frames)
        return times, distinct and (reordered or not b_frames)
