"""Frame sources: a webcam (its own capture thread, always the newest frame; reconnects), a network stream
(app/playback/stream.py), a video file (frame-accurate
seeking, verified against a sequential decode; opened and decoded by engine.video.reader's reader, jumps by
app.playback.file_seeker where the file allows), a still image. All hand out RGB uint8 (H, W, 3) frames.

OpenCV, not Qt: sources are tested headless and run inside the pipeline worker's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from app.playback.file_seeker import FileSeeker
from app.playback.frame_index import FrameIndex, thumbnail_key
from app.playback.frames import Backoff, Frame, FrameSource, Notices
from app.playback.stream import StreamSource
from app.source_specs import CameraMode, CameraSpec, is_stream_address, parse_camera
from engine.errors import VideoError
from engine.video.reader import VideoReader, frame_rate

__all__ = ["CameraSource", "Frame", "FrameSource", "ImageSource", "StreamSource", "VideoFileSource", "open_source"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# Forward decoding beats a container seek for short hops (a seek decodes from the previous keyframe anyway).
SHORT_HOP = 24


class CameraSource(FrameSource):
    """A webcam by index (or anything OpenCV captures from). A capture thread reads continuously and keeps only the
    newest frame, so the pipeline always explains what the camera sees now, never a queue of old frames.

    A camera that stops sending (unplugged, taken by another program) is opened again after 0.5, 1, 2, 4, then every
    5 s, with a note when it is lost and when it is back; meanwhile `read()` has nothing new and the picture on
    screen stays. How far behind now a picture is counts from the moment the capture handed it over."""

    kind = "camera"
    live_clock = "the moment the capture handed each picture over (the camera's own delay unseen)"

    def __init__(
        self,
        device: int | str,
        *,
        open_timeout: float = 5.0,
        frame_timeout: float = 0.25,
        max_failures: int = 5,
        mode: CameraMode | None = None,
    ) -> None:
        """`frame_timeout`: how long `read()` waits for a new picture before it says there is none;
        `max_failures`: failed reads in a row that count as the camera lost; `mode`: the size and frame rate to ask
        the camera for (it gives the nearest it has: `mode_note` says what it gives; asked again when it is opened
        again), None: its own default."""
        self.device = device
        self.label = f"camera {device}" if isinstance(device, int) else str(device)
        self.spec = str(CameraSpec(device, mode)) if isinstance(device, int) else device  # what reopens it
        self._frame_timeout = frame_timeout
        self._max_failures = max_failures
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            self._capture.release()
            raise VideoError(f"{self.label} did not open: there is no such camera, or another program uses it")
        self._mode = mode
        self._ask_for_mode(mode)
        self.fps = frame_rate(self._capture)
        self._condition = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_at = 0.0
        self._sequence = 0  # frames captured so far
        self._delivered = 0  # sequence number of the last frame handed out
        self._notices = Notices()
        self._backoff = Backoff()
        self._lost_at: float | None = None  # when the camera was lost (None: it sends)
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"capture-{device}", daemon=True)
        self._thread.start()
        with self._condition:
            if not self._condition.wait_for(lambda: self._sequence > 0, open_timeout):
                self.close()
                raise VideoError(f"{self.label} opened but sent no picture within {open_timeout:.0f} s")
        self.mode_note = self._mode_note(mode)

    def _ask_for_mode(self, mode: CameraMode | None) -> None:
        """Ask for `mode` before the first frame: compressed frames first (USB cameras offer their large sizes and
        high rates as MJPG; one that has none keeps its format), then the size, then the rate."""
        if mode is None:
            return
        self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, mode.width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, mode.height)
        if mode.fps is not None:
            self._capture.set(cv2.CAP_PROP_FPS, mode.fps)

    def _mode_note(self, asked: CameraMode | None) -> str:
        """What the camera gives (its first frame's size, the rate it reports) against what was asked; "" when
        nothing was asked."""
        if asked is None or self._latest is None:
            return ""
        height, width = self._latest.shape[:2]
        given = CameraMode(width, height, round(self.fps, 2))
        if (width, height) == (asked.width, asked.height) and (asked.fps is None or abs(self.fps - asked.fps) < 0.5):
            return f"{self.label} gives {given}, as asked"
        return f"{self.label} gives {given}, not the {asked} asked for (the nearest it offers)"

    def _capture_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            ok, bgr = self._capture.read()
            if not ok:
                failures += 1
                if failures < self._max_failures:
                    time.sleep(0.02)
                    continue
                failures = 0
                if not self._reopen():
                    return  # closed meanwhile
                continue
            failures = 0
            if self._lost_at is not None:  # a picture again after a loss: it is back
                self.reconnects += 1
                self._notices.say(f"{self.label} is back after {time.monotonic() - self._lost_at:.1f} s")
                self._lost_at = None
                self._backoff.reset()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            with self._condition:
                if self._sequence > self._delivered:
                    self.dropped += 1  # the previous frame was never picked up: it is replaced
                self._latest, self._latest_at = rgb, time.perf_counter()
                self._sequence += 1
                self._condition.notify_all()

    def _reopen(self) -> bool:
        """The camera stopped sending: say so (once per loss), then open it again after the next wait of the
        backoff until it opens (False: the source was closed meanwhile)."""
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            self._notices.say(
                f"{self.label} stopped sending pictures (unplugged, or taken by another program): reconnecting "
                f"(every few seconds); the last picture stays"
            )
        self._capture.release()
        while not self._stop.wait(self._backoff.next_delay()):
            capture = cv2.VideoCapture(self.device)
            if capture.isOpened():
                self._capture = capture
                self._ask_for_mode(self._mode)  # the mode chosen, again
                return True
            capture.release()
        return False

    @property
    def lost(self) -> bool:
        return self._lost_at is not None

    def read(self) -> Frame | None:
        """The newest frame not handed out before; None when none came within `frame_timeout` (the picture on
        screen stays: the camera is slow, or lost and being opened again)."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._sequence > self._delivered, self._frame_timeout):
                return None
            assert self._latest is not None
            self._delivered = self._sequence
            return Frame(self._latest, None, self._latest_at, live_at=self._latest_at)

    def take_notice(self) -> str | None:
        return self._notices.take()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self._capture.release()


class VideoFileSource(FrameSource):
    """A video file, read sequentially for playback and seekable to any frame; decoded by engine.video.reader's reader.

    Seeking with the container (CAP_PROP_POS_FRAMES) lands on the wrong frame for some files (timestamps that do
    not start at 0, variable frame rates, B-frames). So a second reader decodes the file once in the background and
    records a small fingerprint of every frame; every seek is checked against it. When the container seek lands
    elsewhere, we seek earlier, find where we landed, and decode forward to the frame asked for (or decode from the
    start). The exact frame count comes from the same sequential decode; a file that ends well before its header's
    count says so once (`take_notice`).

    Jumps go through a FileSeeker first (PyAV: it decodes only the frames the one asked for needs, 2-3x faster on
    H.264 with B-frames) once it has made its table of the file; its answer is checked against the same
    fingerprints, and one wrong answer (or a file PyAV cannot read) sends every later jump on that file the OpenCV
    way. After a jump the frames that follow come from whichever decoder made it.
    """

    kind = "video"
    seekable = True

    def __init__(self, path: str | Path, *, verify_seeks: bool = True, background: bool = True) -> None:
        """`background`: start the index and the seeker's table now; False: at `start_background` (the scheduler
        starts them once the model is ready, so that they do not slow its load)."""
        self.path = Path(path)
        self.label = self.path.name
        self._reader = VideoReader(self.path)  # checks the file and decodes its first frame
        self.fps = self._reader.fps
        # the header's count is an estimate (box.mp4 says 456 and holds 455); the index corrects it
        self.header_count = self._reader.frame_count
        self.frame_count = self.header_count
        self._next = 0  # index of the frame the next read() returns
        self._landed: np.ndarray | None = None  # decoded by a container seek (to check where), not handed out yet
        self.seek_mismatches = 0  # container seeks that landed on the wrong frame (then corrected)
        self.seeker_mismatches = 0  # answers of the seeker that were another frame (the first one drops it)
        self._verify_seeks = verify_seeks
        self._index: FrameIndex | None = None  # fingerprints of every frame, made in a thread of their own
        self._noticed = False  # the file's truncation has been told
        self._seeker: FileSeeker | None = None  # reads the file's times in its own thread
        self._background = False  # the index and the seeker have been started
        self._behind_seeker: FileSeeker | None = None  # its twin, for frames_behind (another thread's)
        self._behind_lock = threading.Lock()
        self._from_seeker = False  # reads go on from the seeker's decoder (after a jump it made)
        if background:
            self.start_background()

    def start_background(self) -> None:
        """Start the frame index and the seeker's table (once; their threads run at a low priority). Until then
        seeks go the OpenCV way and trust the container, as before the index is ready."""
        if self._background:
            return
        self._background = True
        if self._verify_seeks:
            self._index = FrameIndex(self.path)
        self._seeker = FileSeeker(self.path)

    @property
    def background_started(self) -> bool:
        return self._background

    # -- sequential reading ---------------------------------------------------------------------------------------
    @property
    def position(self) -> int | None:
        return self._next

    def _read_raw(self) -> np.ndarray | None:
        if self._landed is not None:
            bgr, self._landed = self._landed, None
            return bgr
        if self._from_seeker and self._seeker is not None:
            try:
                return self._seeker.read()
            except Exception:  # noqa: BLE001 (PyAV refuses a damaged packet that OpenCV passes over)
                self._leave_seeker()
                return self._read_raw()
        return self._reader.read_bgr()

    def read(self) -> Frame | None:
        bgr = self._read_raw()
        if bgr is None:
            self._learn_count(self._next)
            return None
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._next, time.perf_counter())
        self._next += 1
        return frame

    def skip(self, count: int) -> None:
        for _ in range(count):
            if self._landed is not None:
                self._landed = None
            elif not self._grab():
                self._learn_count(self._next)
                return
            self._next += 1

    def _grab(self) -> bool:
        if self._from_seeker and self._seeker is not None:
            try:
                return self._seeker.skip(1) == 1
            except Exception:  # noqa: BLE001 (as in _read_raw)
                self._leave_seeker()
                return self._grab()
        return self._reader.grab()

    def _leave_seeker(self) -> None:
        """PyAV failed where the seeker's reading had got to: OpenCV takes over from the same frame."""
        target = self._next
        self._drop_seeker()
        self._seek_before(target)
        self.skip(target - self._next)

    def _learn_count(self, count: int) -> None:
        if count > 0:
            self.frame_count = count

    def take_notice(self) -> str | None:
        """Once per file: the note that it ends before its header's frame count (known when playback or the
        index has read it from the start to its end); None otherwise."""
        if self._noticed:
            return None
        notice = self._reader.truncation
        if notice is None and self._index is not None and self._index.done:
            notice = self._index.truncation
        self._noticed = notice is not None
        return notice

    @property
    def index_ready(self) -> bool:
        return self._index is not None and self._index.done

    def refresh_count(self) -> bool:
        """Take the exact frame count from the finished index; True when it changed."""
        if self._index is None or not self._index.done or self._index.error is not None:
            return False
        exact = self._index.count
        changed = exact != self.frame_count
        self.frame_count = exact
        return changed

    # -- seeking ------------------------------------------------------------------------------------------------
    def seek(self, index: int) -> Frame:
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise VideoError(f"{self.label} has frames 0..{(self.frame_count or 1) - 1}; there is no frame {index}")
        if not (0 <= index - self._next <= SHORT_HOP) and not self._jump(index):
            self._seek_before(index)
        self.skip(index - self._next)
        frame = self.read()
        if frame is None:
            raise VideoError(f"{self.label}: frame {index} could not be decoded")
        return frame

    def _jump(self, index: int) -> bool:
        """Frame `index` through the seeker (held in `_landed`); False when it cannot be used for this file (or
        is not ready yet)."""
        seeker = self._ready_seeker()
        if seeker is None:
            return False
        try:
            bgr = seeker.seek(index)
        except Exception:  # noqa: BLE001 (PyAV refuses a damaged packet: the OpenCV way, as for any other doubt)
            bgr = None
        if bgr is None:
            self._drop_seeker()
            return False
        key = None if self._index is None else self._index.key(index)
        if key is not None and thumbnail_key(bgr) != key:  # the file's times mislead: the OpenCV way from now on
            self.seeker_mismatches += 1
            self._drop_seeker()
            return False
        self._landed, self._next, self._from_seeker = bgr, index, True
        return True

    def _ready_seeker(self) -> FileSeeker | None:
        """The seeker when it has read the file's times and can use them (dropped when it cannot)."""
        seeker = self._seeker
        if seeker is None or not seeker.ready:
            return None
        if not seeker.usable:
            self._drop_seeker()
            return None
        return seeker

    def _drop_seeker(self) -> None:
        """No more jumps through the seeker for this file (it cannot read it, cannot use its times, or was wrong)."""
        self._from_seeker = False
        if self._seeker is not None:
            self._seeker.close()
            self._seeker = None

    def frames_behind(self, index: int, count: int, wanted: Callable[[], bool]) -> Iterator[Frame]:
        """Frames index - count .. index - 1 for another thread than the one reading the file: a second decoder
        makes them (never the one playback and seeks use, so neither waits for the other), each checked against its
        fingerprint. Nothing on a file whose jumps go the OpenCV way; stops when `wanted()` turns False."""
        with self._behind_lock:
            if self._behind_seeker is None:
                seeker = self._seeker
                self._behind_seeker = seeker.twin() if seeker is not None else None
            twin = self._behind_seeker
            if twin is None:
                return
            start = max(index - count, 0)
            for position in range(start, index):
                if not wanted():
                    return
                bgr = twin.seek(position) if position == start else twin.read()
                key = None if self._index is None else self._index.key(position)
                if bgr is None or (key is not None and thumbnail_key(bgr) != key):
                    return
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), position, time.perf_counter())

    def _seek_before(self, index: int) -> None:
        """Put the reader at a known position <= index, using the container seek when it proves right."""
        landed = self._container_seek(index)
        if self._index is None or self._index.key(index) is None:  # not indexed (yet): trust the container
            self._landed, self._next = landed, index
            return
        position = self._where(landed, index)
        if position == index:
            self._landed, self._next = landed, index
            return
        self.seek_mismatches += 1
        if position is not None and position < index:  # landed early (a keyframe): decode forward from there
            self._landed, self._next = landed, position
            return
        margin = 2 * SHORT_HOP
        while index - margin > 0:  # landed late or nowhere known: seek earlier, find out where we are
            landed = self._container_seek(index - margin)
            position = self._where(landed, index - margin)
            if position is not None and position <= index:
                self._landed, self._next = landed, position
                return
            margin *= 4
        self._rewind()

    def _where(self, bgr: np.ndarray | None, guess: int) -> int | None:
        """Which frame `bgr` is, by its fingerprint: `guess` if it matches, else the one unique match, else None."""
        assert self._index is not None
        if bgr is None:
            return None
        key = thumbnail_key(bgr)
        if self._index.key(guess) == key:
            return guess
        return self._index.locate(key)

    def _container_seek(self, index: int) -> np.ndarray | None:
        self._landed, self._from_seeker = None, False
        self._reader.seek(index)
        self._next = index
        return self._reader.read_bgr()

    def _rewind(self) -> None:
        """Reading from the very start is always exact."""
        self._reader.rewind()
        self._landed, self._next, self._from_seeker = None, 0, False

    def close(self) -> None:
        if self._index is not None:
            self._index.stop()
        if self._seeker is not None:
            self._seeker.close()
        with self._behind_lock:
            if self._behind_seeker is not None:
                self._behind_seeker.close()
                self._behind_seeker = None
        self._reader.close()


class ImageSource(FrameSource):
    """A still image: one frame, explained again whenever a setting changes."""

    kind = "image"
    seekable = True
    frame_count = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.label = self.path.name
        bgr = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError(f"{self.path} could not be read as an image (damaged, or a format OpenCV cannot read)")
        self._image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._served = False

    def read(self) -> Frame | None:
        if self._served:
            return None
        self._served = True
        return Frame(self._image, 0, time.perf_counter())

    def seek(self, index: int) -> Frame:
        if index != 0:
            raise VideoError(f"{self.label} is a still image; it has only frame 0")
        self._served = True
        return Frame(self._image, 0, time.perf_counter())


def open_source(spec: int | str | Path, *, background: bool = True) -> FrameSource:
    """A camera (0, '1', 'camera:0@1280x720:30': app/source_specs.py), a stream URL (udp://, tcp://, rtsp://...: a
    StreamSource), or a video / image file. `background`: a video file starts its index and seeker now (False: at
    its `start_background`)."""
    camera = _camera(spec)
    if camera is not None:
        return CameraSource(camera.index, mode=camera.mode)
    if isinstance(spec, str) and is_stream_address(spec):
        return StreamSource(spec)
    if isinstance(spec, str) and "://" in spec:  # another scheme OpenCV may know (e.g. a GStreamer pipeline's)
        return CameraSource(spec)
    path = Path(str(spec)).expanduser()
    if not path.exists():
        raise VideoError(f"{path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder; open a video or an image file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    try:
        return VideoFileSource(path, background=background)
    except VideoError as video_error:
        if cv2.imread(str(path), cv2.IMREAD_COLOR) is not None:  # an image with an unusual name
            return ImageSource(path)
        raise video_error


def _camera(spec: int | str | Path) -> CameraSpec | None:
    if isinstance(spec, Path):
        return None
    try:
        return parse_camera(spec)
    except ValueError as error:
        raise VideoError(str(error)) from None
