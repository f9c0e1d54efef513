"""Video files: the one reader (OpenCV) for the app's file source, the renderer and the benchmark; an H.264 writer.

The reader checks what it opens and says clearly what is wrong (missing, empty, a folder, a text file, not a video,
no decodable frame). It decodes one frame at a time (`read` RGB, `read_bgr` as OpenCV gives it, `grab` to pass
over one) and can jump with the container's seek (`seek`, which may land elsewhere on some files: the app checks
every jump against fingerprints) or from the very start (`rewind`, always exact). A truncated file yields the frames
before the damage; once a read from the start reaches the end, `truncation` says whether the file ended before the
frame count its header announces, so that callers can say it once and go on.

The writer encodes H.264 in an MP4 through PyAV (whose wheels bundle FFmpeg with libx264): yuv420p at even width
and height, BT.709 limited range and tagged as such, the index (moov) at the start of the file (`+faststart`), so
that browsers and phones play it, also while it downloads. It is a context manager that always finishes the file,
so a render that stops half-way (Ctrl+C, an error) leaves a playable video of the frames written so far. With
`fragments` (the app's live recording) it writes a fragmented MP4 instead (FFmpeg's `frag_keyframe+empty_moov`), a
fragment a second reaching the disk as it is made, so that a process killed mid-recording leaves a file that plays
up to its last second; each frame can carry its own time (`write(frame, pts)`), so frames left out keep the rest on
time.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Final

import cv2
import numpy as np

from engine.closing import Closing
from engine.errors import VideoError

if TYPE_CHECKING:
    from av.video.stream import VideoStream

# FFmpeg prints decoder chatter on seeks and on damaged files ("non-intra slice in an IDR NAL unit", "partial
# file"); what matters reaches the user as a VideoError or as `truncation`. Read when the first capture opens.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

FALLBACK_FPS: Final = 25.0
"""The frame rate of a video (or camera) whose header gives none or nonsense: FFmpeg's own assumption."""

_TEXT_CODECS = {b"ansi", b"bint", b"xbin", b"idf\x00"}  # FFmpeg's renderers of text files ("plays" any text file)


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The capture's frames per second; FALLBACK_FPS when the container reports 0 or nonsense."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1000 else FALLBACK_FPS


def ends_early(frames_read: int, header_count: int | None) -> bool:
    """True when a file holds clearly fewer frames than its header announces.

    Headers only estimate their frame count (box.mp4 announces 456 and holds 455; variable frame rates are worse),
    so only a shortfall of more than 2% and more than 2 frames counts.
    """
    if not header_count:
        return False
    return header_count - frames_read > max(2.0, 0.02 * header_count)


def truncation_note(path: str | Path, frames_read: int, header_count: int | None) -> str | None:
    """The one line that says a file ends early (None when it does not)."""
    if not ends_early(frames_read, header_count):
        return None
    return (
        f"{Path(path).name} ends early: {frames_read} of the {header_count} frames its header announces can be read "
        f"(a truncated or damaged file); the frames before the damage are used"
    )


class VideoReader(Closing):
    """Frames of a video file, one at a time. Raises VideoError when the file cannot be read as a video."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.capture = _open_capture(self.path)
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise VideoError(f"{self.path} holds no frame that can be decoded (the file is damaged or not a video)")
        self._first: np.ndarray | None = first  # decoded to check the file; handed out by the first read
        self.height, self.width = first.shape[:2]
        self.fps = frame_rate(self.capture)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # the header's count: a hint (truncated files over-report)
        self.frames_read = 0  # frames passed since the open (or rewind); a position only while `_from_start`
        self._from_start = True  # no container seek since the open: frames_read counts the file's frames
        self.truncation: str | None = None  # set when a read from the start ends early (see truncation_note)

    # -- one frame at a time --------------------------------------------------------------------------------------
    def read_bgr(self) -> np.ndarray | None:
        """The next frame as OpenCV decodes it, (H, W, 3) uint8 BGR; None at the end of the file."""
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                self._at_end()
                return None
        self.frames_read += 1
        return frame

    def read(self) -> np.ndarray | None:
        """The next frame, (H, W, 3) uint8 RGB; None at the end of the file."""
        frame = self.read_bgr()
        return None if frame is None else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def grab(self) -> bool:
        """Pass over the next frame without converting it; False at the end of the file."""
        if self._first is not None:
            self._first = None
        elif not self.capture.grab():
            self._at_end()
            return False
        self.frames_read += 1
        return True

    def seek(self, index: int) -> None:
        """The container's seek: the next read is frame `index` if the container's index is right (not always:
        open GOPs, timestamps that do not start at 0; the app checks every jump against fingerprints)."""
        self._first = None
        self._from_start = False
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)

    def rewind(self) -> None:
        """Back to frame 0 by reopening the file: reading from the very start is always exact."""
        self.capture.release()
        self.capture = _open_capture(self.path)
        self._first = None
        self.frames_read = 0
        self._from_start = True

    def _at_end(self) -> None:
        if self._from_start and self.truncation is None:
            self.truncation = truncation_note(self.path, self.frames_read, self.frame_count)

    # -- all frames -----------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        """RGB frames to the end of the file."""
        while (frame := self.read()) is not None:
            yield frame

    def batches(self, size: int, limit: int | None = None) -> Iterator[list[np.ndarray]]:
        """The RGB frames (the first `limit` of them, or all) in lists of `size`, the last one shorter."""
        pending: list[np.ndarray] = []
        taken = 0
        for frame in self:
            if limit is not None and taken >= limit:
                break
            pending.append(frame)
            taken += 1
            if len(pending) == size:
                yield pending
                pending = []
        if pending:
            yield pending

    def prefetched(self, depth: int = 4) -> Iterator[np.ndarray]:
        """The same frames, decoded ahead by a background thread (OpenCV releases the GIL while decoding), so
        that decoding overlaps the explaining. Stopping early (break) ends the thread."""
        frames: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def decode() -> None:
            try:
                for frame in self:
                    while not stop.is_set():
                        try:
                            frames.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                frames.put(None)
            except BaseException as error:  # noqa: BLE001 (handed to the consumer, raised there)
                frames.put(error)

        worker = threading.Thread(target=decode, name="video-decode", daemon=True)
        worker.start()
        try:
            while True:
                item = frames.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)

    def close(self) -> None:
        self.capture.release()


H264_CRF: Final = 20
"""x264's constant quality for exports (0 lossless .. 51; lower is better and larger): 20, on the clean side of the
usual 18-23."""

H264_PRESET: Final = "veryfast"
"""x264's speed / size trade-off for exports. Measured on 120 frames of box.mp4 (640x480, CRF 20) on the shared
2-core CPU: ultrafast 488 frames/s (1476 KiB), veryfast 208 (382 KiB), faster 151 (423 KiB), medium 79 (435 KiB):
veryfast keeps the encoder a small part of a render (the engine explains ~30-70 frames/s here)."""

FRAGMENT_SECONDS: Final = 1.0
"""With `fragments`: a keyframe, so a fragment flushed to the disk, every second: what a crash can lose, at most."""

_BT709: Final = 1  # AVCOL_PRI_BT709 = AVCOL_TRC_BT709 = AVCOL_SPC_BT709
_LIMITED_RANGE: Final = 1  # AVCOL_RANGE_MPEG (16..235), what players expect of H.264


class VideoWriter(Closing):
    """Writes RGB uint8 frames of one size to an H.264 MP4 (libx264 through PyAV).

    H.264 in yuv420p needs even sides: a frame of odd width or height is padded by repeating its last column or row
    (nothing is cut off). `crf` is x264's constant quality (0 lossless .. 51; 18-23 look clean), `preset` its
    speed / size trade-off. Closing flushes the encoder and writes the index: until then the file does not play,
    unless it is written in `fragments` (see the module's docstring): then the encoder runs in one thread without
    look-ahead or B-frames (x264's zerolatency tune), so a frame leaves it at once and reaches the disk with its
    fragment, and the times start at 0 without an edit list.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int],
        *,
        crf: int = H264_CRF,
        preset: str = H264_PRESET,
        fragments: bool = False,
    ) -> None:
        import av  # here, not at the top: the app imports this module for its reader and starts faster without

        self.path = Path(path)
        self.size = size  # (width, height) of the frames written
        width, height = size
        self.encoded_size = (width + width % 2, height + height % 2)
        self.frames = 0
        self.last_pts: int | None = None  # the time of the last frame written, in frame periods
        # the mp4 muxer whatever the name: the index moves to the front when the file is finished, or (fragments)
        # an empty index first and a fragment at each keyframe, written through to the file as it is made
        options = (
            {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
            if fragments
            else {"movflags": "+faststart"}
        )
        try:  # FFmpeg opens the file only with the first frame: find out now, and never leave an older file there
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.open("wb").close()
            self._container = av.open(str(self.path), mode="w", format="mp4", options=options)
        except (OSError, av.FFmpegError) as error:
            raise VideoError(f"cannot write a video to {self.path}: {error} (is the folder writable?)") from error
        try:
            self._stream: VideoStream | None = self._h264_stream(fps, crf, preset, fragments)
        except BaseException:
            self._container.close()
            raise

    def _h264_stream(self, fps: float, crf: int, preset: str, fragments: bool) -> VideoStream:
        stream = self._container.add_stream("libx264", rate=_frame_rate_fraction(fps))
        stream.width, stream.height = self.encoded_size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, **({"tune": "zerolatency"} if fragments else {})}
        context = stream.codec_context
        if fragments:
            context.gop_size = max(round(fps * FRAGMENT_SECONDS), 1)
            context.thread_count = 1  # beside the live view on a few cores: one thread, no frame delay
        # the colours `write` converts to, told to players
        context.colorspace = context.color_primaries = context.color_trc = _BT709
        context.color_range = _LIMITED_RANGE
        return stream

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Append one (H, W, 3) uint8 RGB frame of the writer's size, at time `pts` in frame periods (None: right
        after the last one); a frame shows until the next one's time."""
        from av import VideoFrame
        from av.video.reformatter import ColorRange, Colorspace

        if self._stream is None:
            raise ValueError(f"{self.path} is closed")
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} for a {self.size[0]}x{self.size[1]} video")
        if self.encoded_size != self.size:
            frame = _pad_to(frame, self.encoded_size)
        picture = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        picture = picture.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
        pts = (0 if self.last_pts is None else self.last_pts + 1) if pts is None else int(pts)
        if self.last_pts is not None and pts <= self.last_pts:
            raise ValueError(f"frame times must grow: {pts} after {self.last_pts}")
        picture.pts = pts
        self._container.mux(self._stream.encode(picture))
        self.frames += 1
        self.last_pts = pts

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            self._container.mux(stream.encode(None))  # the frames the encoder still holds
        finally:
            self._container.close()  # writes the index (and moves it to the front): without it nothing plays
            if self.frames == 0:
                self.path.unlink(missing_ok=True)  # the empty placeholder: no frame, no video


def _frame_rate_fraction(fps: float) -> Fraction:
    """The container's frame rate as a fraction: NTSC rates stay exact (29.97... -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def _pad_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` grown to (width, height) by repeating its last column and row."""
    width, height = size
    return np.pad(frame, ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)), mode="edge")


def _open_capture(path: Path) -> cv2.VideoCapture:
    """An OpenCV capture of a file that exists, is not empty and is not text; VideoError otherwise."""
    if not path.exists():
        raise VideoError(f"{path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is an empty file, not a video")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path} could not be opened as a video (not a video file, damaged, or an unknown codec)")
    codec = (int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF).to_bytes(4, "little")
    if codec in _TEXT_CODECS:
        capture.release()
        raise VideoError(f"{path} is a text file, not a video or an image")
    return capture
