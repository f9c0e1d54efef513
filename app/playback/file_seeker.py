"""FileSeeker: a jump to any frame of a video file that decodes only what the frame needs (PyAV).

A jump has to decode from the keyframe before the frame asked for. OpenCV's seek decodes every frame on the way;
FFmpeg can leave out the frames that no other frame refers to (the B-frames of most H.264 files, 60% of the 720p demo
clip's frames) as long as they come before the one asked for. Measured on assets/demo/box-720p.mp4 (keyframes a
second apart), 30 random jumps, same run: OpenCV 75 ms median, PyAV with one thread 42 ms, PyAV leaving out
unreferenced frames 28 ms; with two frame threads 41 ms (threads wait for each other on a chain of references).
(`python scripts/seek_costs.py CLIP` measures it; `run_app.py --benchmark-seeks N` the app's whole answer.)

That needs to know, for every packet, where its picture is shown. Most files say so in their packets' presentation
times. Some do not: box.mp4's packets carry decode-order times only (pts == dts, with B-frames), and FFmpeg hands
its frames out, in the order they are shown, each with its own packet's time, which goes back and forth. For such a
file one decoding pass (no conversion) records the order in which the packets' pictures are shown: box.mp4's jumps
(keyframes 250 frames apart) went from ~200 ms to 80-110 ms. `usable` says whether the table could be made (every
frame's time distinct) and PyAV gives the first frame OpenCV's pixels (same FFmpeg conversion only when both wheels
carry the same FFmpeg: equal on both demo clips, vtest.avi and cup.mp4 with PyAV 18.1 and OpenCV 5.0, whose FFmpeg is
8.0 in both; with swscale's C path forced, PyAV's pixels differ by up to 3, and then the seeker is simply not used).
The video source also checks every answer against the frame's fingerprint and stops using the seeker on a file
where one is wrong. tests/app/test_file_seeker.py checks an x264 clip with B-frames, box.mp4 and a cut MJPG file.

Where keyframes are far apart (more than LONG_GOP_FRAMES: box.mp4's are 250 frames apart) even that decodes about
half the frames before the target (133 for box.mp4's frame 249, ~180 ms under load), so the same low-priority
thread then decodes the file once more and keeps its frames as the decoder made them (YUV 4:2:0, half the bytes of
BGR, as many as the app's budget for frames kept allows, app/playback/frame_memory.py: all of box.mp4 in 210 MB); a
jump to one of them is a colour conversion (1.5 ms), through the same FFmpeg conversion, so the pixels are the same.

After a jump, `read` goes on from the frame after it (the decoder is there already), so playback after a jump needs
no second seek. The table comes from reading every packet of the file once (the whole file's bytes: milliseconds for
the demo clips, longer for a film; plus the decoding pass where needed), so a thread of its own builds it at low
priority while the file plays; until it is `ready` the video source jumps the OpenCV way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.playback.frame_index import lower_this_threads_priority
from app.playback.frame_memory import FRAME_MEMORY, FrameMemory
from engine.video.reader import VideoReader

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

LONG_GOP_FRAMES = 90  # frames per keyframe beyond which the decoded frames are kept (3 s at 30 frames/s)


class _Kept:
    """A decoded frame as the decoder made it (YUV 4:2:0 planes and their colour tags)."""

    __slots__ = ("planes", "colorspace", "color_range")

    def __init__(self, frame: VideoFrame) -> None:
        self.planes = frame.to_ndarray()
        self.colorspace, self.color_range = frame.colorspace, frame.color_range

    def bgr(self) -> np.ndarray:
        from av import VideoFrame

        frame = VideoFrame.from_ndarray(self.planes, format="yuv420p")
        frame.colorspace, frame.color_range = self.colorspace, self.color_range
        return frame.to_ndarray(format="bgr24")


class FileSeeker:
    """Exact jumps in `path` by presentation timestamp, once `ready` and where `usable`. Never raises on opening: a
    file PyAV cannot read is simply not `usable`. `seek` and `read` raise av.FFmpegError on a packet PyAV refuses."""

    def __init__(
        self,
        path: str | Path,
        times: list[int] | None = None,
        kept: dict[int, _Kept] | None = None,
        memory: FrameMemory = FRAME_MEMORY,
    ) -> None:
        """`times`, `kept`: the table and the kept frames of another seeker of the same file (see `twin`), opened
        now instead of read again (their bytes stay counted by that one). `memory`: what the kept frames count
        against."""
        self.path = Path(path)
        self._memory = memory
        self._kept_bytes = 0  # counted against `memory` by this seeker (its twin counts nothing)
        self._container: InputContainer | None = None
        self._stream: VideoStream | None = None
        self._times: list[int] = []  # frame index -> the time of the packet that holds it
        self._shown: dict[int, int] = {}  # packet time -> the index of its frame
        self._usable = False
        self._keyframes = 0  # keyframe packets (counted by the table's scan)
        self._frames: Iterator[VideoFrame] | None = None  # the decoder's frames from the last jump on
        self._kept: dict[int, _Kept] = {} if kept is None else kept  # frame index -> the frame kept (long GOPs)
        self._next_kept: int | None = None  # reading goes on from the kept frames, at this index
        self._stop = threading.Event()
        self._keeping = threading.Lock()  # around the count of the frames kept (the thread adds, close gives back)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._open, args=(times,), name=f"seeker-{self.path.name}", daemon=True)
        if times is None:
            self._thread.start()
        else:
            self._open(times)

    def twin(self) -> FileSeeker | None:
        """A second seeker of the same file with its own decoder (for another thread), the table shared; None when
        this one is not usable."""
        if not self.usable:
            return None
        twin = FileSeeker(self.path, self._times, self._kept)
        return twin if twin.usable else None

    @property
    def ready(self) -> bool:
        """The file has been opened and its times read (or found unusable)."""
        return self._ready.is_set()

    @property
    def usable(self) -> bool:
        """Ready, and the file's times can be trusted for jumps."""
        return self._ready.is_set() and self._usable

    def wait(self, timeout: float | None = None) -> bool:
        """Until `ready` (the table made)."""
        return self._ready.wait(timeout)

    def wait_kept(self, timeout: float | None = None) -> bool:
        """Until the frames to keep are kept too (at once where none are)."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self._ready.is_set() and not self._thread.is_alive()

    @property
    def frame_count(self) -> int:
        return len(self._times) if self.ready else 0

    @property
    def kept(self) -> int:
        """How many decoded frames are kept (files with keyframes far apart)."""
        return len(self._kept)

    def seek(self, index: int) -> np.ndarray | None:
        """Frame `index` as (H, W, 3) uint8 BGR; None when not usable (yet) or the file has no such frame."""
        if not self.usable or not 0 <= index < len(self._times):
            return None
        self._frames, self._next_kept = None, index
        return self.read()

    def read(self) -> np.ndarray | None:
        """The frame after the last one handed out (BGR), None at the end of the file or before any jump."""
        kept = self._take_kept()
        if kept is not None:
            return kept.bgr()
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
        while passed < count:
            if self._take_kept() is None and (self._frames is None or next(self._frames, None) is None):
                break
            passed += 1
        return passed

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._frames = None
        if self._container is not None:
            self._container.close()
        with self._keeping:
            self._memory.give(self._kept_bytes)  # (a twin sharing the frames holds them until it is closed too)
            self._kept_bytes = 0

    # -- inside ---------------------------------------------------------------------------------------------------
    def _take_kept(self) -> _Kept | None:
        """The next frame from those kept, if reading is among them; else the decoder is put where they end."""
        index = self._next_kept
        if index is None:
            return None
        kept = self._kept.get(index)
        if kept is not None:
            self._next_kept = index + 1
            return kept
        self._next_kept = None
        if index < len(self._times):
            assert self._container is not None and self._stream is not None
            self._container.seek(self._times[index], stream=self._stream, backward=True, any_frame=False)
            self._frames = self._decoded_from(index)
        return None

    def _decoded_from(self, index: int) -> Iterator[VideoFrame]:
        """Frames in the order they are shown from frame `index` on (the container is at a keyframe before it).
        Packets shown before it are decoded only when another frame refers to them."""
        assert self._container is not None and self._stream is not None
        context = self._stream.codec_context
        target = self._times[index]
        reached = False
        try:
            for packet in self._container.demux(self._stream):
                shown = None if packet.pts is None else self._shown.get(packet.pts)
                context.skip_frame = "NONREF" if shown is not None and shown < index else "DEFAULT"
                for frame in packet.decode():
                    reached = reached or frame.pts == target
                    if reached:
                        yield frame
        finally:
            context.skip_frame = "DEFAULT"

    def _open(self, times: list[int] | None) -> None:
        """(its own thread) Open the file and read every packet's time: the table of jumps (or take `times`)."""
        if times is None:
            # playback comes first, but not by as much as for the index (15): with two busy loops on the two cores
            # box.mp4's table took 2.3-2.9 s at 5 and 20.6-22.7 s at 15 (0.6 s without them); jumps are slow till then
            lower_this_threads_priority(5)
        container = None
        kept_too = False  # keep the decoded frames as well (keyframes far apart)
        try:
            import av  # here: the app starts without it

            container = av.open(str(self.path))
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1  # the fastest jump (see above); frames are decoded one at a time
            if times is None:
                times = self._frame_times(container, stream)
                kept_too = len(times) > LONG_GOP_FRAMES * max(self._keyframes, 1)
                times = times if self._converts_as_opencv(container, stream) else []
            self._usable = bool(times) and len(set(times)) == len(times)
            self._shown = {time: index for index, time in enumerate(times)}
            self._container, self._stream, self._times = container, stream, times
        except Exception:  # noqa: BLE001 (PyAV cannot read what OpenCV can, or the scan was stopped: not usable)
            self._usable = False
            if container is not None and self._container is None:
                container.close()
        finally:
            self._ready.set()
        if kept_too and self._usable:
            self._keep_frames()

    def _keep_frames(self) -> None:
        """(its own thread, after the table) Decode the file once more and keep its frames, as long as the budget
        for frames kept has room for them."""
        import av

        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                for index, frame in enumerate(container.decode(stream)):
                    self._check_stop()
                    if frame.format.name != "yuv420p" or index >= len(self._times) or frame.pts != self._times[index]:
                        return  # another layout, or not the order of the table: jumps decode as usual
                    kept = _Kept(frame)
                    with self._keeping:
                        if self._stop.is_set() or not self._memory.take(kept.planes.nbytes):
                            return  # closed, or the budget is full: later frames are decoded when jumped to
                        self._kept_bytes += kept.planes.nbytes
                    self._kept[index] = kept
        except Exception:  # noqa: BLE001 (kept frames are a convenience: jumps decode as usual)
            return

    def _frame_times(self, container: InputContainer, stream: VideoStream) -> list[int]:
        """Each frame's packet time, in the order the frames are shown: from the packets alone when their times are
        presentation times, else from a decoding pass (see the module's docstring). Empty when unknown."""
        times: list[int] = []
        reordered = False  # some packet is shown at another time than it is decoded: times are presentation times
        for packet in container.demux(stream):
            self._check_stop()
            if packet.pts is not None:
                times.append(packet.pts)
                reordered = reordered or (packet.dts is not None and packet.dts != packet.pts)
                self._keyframes += packet.is_keyframe
        container.seek(0, stream=stream)
        if reordered or not stream.codec_context.has_b_frames:
            return sorted(times)
        shown: list[int] = []
        for frame in container.decode(stream):  # no conversion: a few milliseconds a frame at most
            self._check_stop()
            if frame.pts is None:
                return []
            shown.append(frame.pts)
        container.seek(0, stream=stream)
        return shown

    def _converts_as_opencv(self, container: InputContainer, stream: VideoStream) -> bool:
        """Whether PyAV gives the first frame the pixels OpenCV gives it. They share FFmpeg's conversion only when both
        wheels carry the same FFmpeg (here both 8.0): its C path differs from its SIMD one by up to 3, so another
        build could give other pixels, and jumps made before the index is ready are not checked by fingerprint."""
        first = next(container.decode(stream), None)
        container.seek(0, stream=stream)
        with VideoReader(self.path) as reader:
            expected = reader.read_bgr()
        return first is not None and expected is not None and np.array_equal(first.to_ndarray(format="bgr24"), expected)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise InterruptedError("closed while reading the file's times")
