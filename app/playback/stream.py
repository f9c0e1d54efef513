"""A network stream (udp://, tcp://, rtsp://, http://, srt://, ...), read with PyAV (FFmpeg) for low latency.

A reader thread of its own demuxes and decodes every packet (H.264 needs them all) and keeps only the newest
picture; `read()` hands that one out (converted to RGB then, so pictures nobody takes cost no conversion) and counts
the ones replaced before anybody took them as dropped. FFmpeg buffers nothing on purpose: `fflags nobuffer`, a small
probe (`probesize`, `analyzeduration`), `flags low_delay`, slice threads only in the decoder (frame threads hold
pictures back, one per thread).

How far behind the live edge a picture is (`Frame.live_at`, `live_clock`):
- a stream whose video PID is WALLCLOCK_PID (scripts/serve_stream.py) stamps each frame with the sender's wall clock
  (90 kHz, modulo 2^33): the picture was live when the sender sent it. Honest when sender and receiver share a
  clock (the same machine, or clocks synchronised by NTP); a stamp more than a minute off is not believed;
- any other stream: the moment the picture arrived here, told by its timestamp against the packets read soonest
  after theirs (ReaderLag: a packet that waited in a buffer counts its wait): the network's and the sender's own
  delay are not seen.

A reader that falls CATCH_UP_S behind the stream (its core starved: the packets wait in FFmpeg's and the system's
buffers) passes over packets up to the next keyframe it is in time for, counted as dropped, with a note: a backlog
never grows.

A stream that stops (the sender ends, a read times out, the connection drops) is tried again in the same thread
after 0.5, 1, 2, 4, then every 5 s, with a note for the user each time it is lost and when it is back; meanwhile
`read()` has nothing new and the picture on screen stays. A size change mid-stream is a note too. Opening is the
one place that fails for good: a URL that never answers, a refused connection, bytes that are not a video are a
VideoError after at most `open_timeout` seconds.
"""

from __future__ import annotations

import threading
import time

import av
import av.error
import numpy as np

from app.playback.frames import Backoff, Frame, FrameSource, Notices
from engine.errors import VideoError

WALLCLOCK_PID = 0x1C1C  # the MPEG-TS PID of a video stream whose pts are the sender's wall clock (serve_stream.py)
PTS_HZ = 90_000
PTS_WRAP = 1 << 33
BELIEVABLE_AGE_S = 60.0  # a wall-clock stamp further off than this is not believed (clocks not in step)

LOW_LATENCY = {
    "fflags": "nobuffer",
    "flags": "low_delay",
    "probesize": "65536",
    "analyzeduration": "500000",  # microseconds
}

CATCH_UP_S = 1.0  # the reader this far behind the stream (a backlog in FFmpeg's or the system's buffers): catch up
RESYNC_S = 10.0  # a jump this large in the stream's own times is a new timeline (a sender restarted), not a backlog

SENDER_CLOCK = "the sender's wall clock, stamped on each frame (the same clock here: this machine or NTP)"
ARRIVAL_CLOCK = (
    "the moment each picture arrived here, as its timestamp tells against the soonest any came (the sender's and the "
    "network's delay unseen)"
)


class ReaderLag:
    """How far the reader is behind a stream, from the stream's own times: a packet's arrival here minus its
    timestamp is smallest for the packets read as soon as they came; how much larger it is for a packet is how long
    that packet waited in a buffer (FFmpeg's, the system's) before this reader took it. A jump of more than
    RESYNC_S is a new timeline (a sender restarted, timestamps wrapped): counted from afresh."""

    def __init__(self) -> None:
        self._soonest: float | None = None  # the smallest arrival - timestamp seen, seconds

    def behind_s(self, timestamp_s: float, arrived: float) -> float:
        offset = arrived - timestamp_s
        if self._soonest is None or offset < self._soonest or offset - self._soonest > RESYNC_S:
            self._soonest = offset
        return offset - self._soonest

    def reset(self) -> None:
        self._soonest = None


class StreamSource(FrameSource):
    kind = "stream"

    def __init__(
        self, url: str, *, open_timeout: float = 5.0, read_timeout: float = 2.0, frame_wait: float = 0.25
    ) -> None:
        """Opens the stream and waits for its first picture (at most `open_timeout` s; VideoError otherwise).
        `read_timeout`: a stream silent this long is lost (and tried again); `frame_wait`: how long `read()` waits
        for a new picture before it says there is none (the pipeline's thread serves requests meanwhile)."""
        self.url = url
        self.label = url
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._frame_wait = frame_wait
        self._notices = Notices()
        self._condition = threading.Condition()
        self._latest: av.VideoFrame | None = None
        self._latest_live_at = 0.0
        self._sequence = 0  # pictures decoded so far
        self._delivered = 0  # sequence number of the last one handed out
        self._size: tuple[int, int] | None = None
        self._failure: str | None = None  # why the first connection failed
        self.undecodable = 0  # packets the decoder refused (damage, garbage on the socket): passed over
        self.caught_up = 0  # times the reader fell CATCH_UP_S behind and passed over packets to the next keyframe
        self.reconnects = 0
        self.connected = False
        self._stop = threading.Event()
        container = self._connect()  # in the caller's thread: a URL that does not open fails here, at once
        stream = container.streams.video[0]
        self.fps = float(stream.average_rate or stream.guessed_rate or self.fps)
        self.live_clock = SENDER_CLOCK if stream.id == WALLCLOCK_PID else ARRIVAL_CLOCK
        self._thread = threading.Thread(target=self._run, args=(container,), name="stream-reader", daemon=True)
        self._thread.start()
        with self._condition:
            got = self._condition.wait_for(lambda: self._sequence > 0 or self._failure is not None, open_timeout)
        if not got or self._failure is not None:
            self.close()
            why = self._failure or f"sent no picture within {open_timeout:g} s"
            raise VideoError(f"{url} {why} (not a video stream this app can read?)")

    # -- connecting -----------------------------------------------------------------------------------------------
    def _connect(self) -> av.container.InputContainer:
        """The stream opened, with a video stream in it; VideoError (one line, what happened) otherwise."""
        try:
            container = av.open(self.url, options=dict(LOW_LATENCY), timeout=(self._open_timeout, self._read_timeout))
        except av.error.ExitError:  # the timeout's interrupt
            raise VideoError(
                f"{self.url} sent nothing for {self._open_timeout:g} s: nothing is sending there, or a firewall is "
                f"in the way"
            ) from None
        except av.error.ConnectionRefusedError:
            raise VideoError(f"{self.url} refused the connection: nothing is serving there") from None
        except av.error.InvalidDataError:
            raise VideoError(f"{self.url} sends something that is not a video stream this app can read") from None
        except av.error.FFmpegError as error:
            raise VideoError(f"{self.url} did not open: {error.strerror or error}") from None
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.url} carries no video")
        codec = container.streams.video[0].codec_context
        codec.thread_type = "SLICE"  # frame threads would hold pictures back, one per thread
        return container

    def _reconnect(self) -> av.container.InputContainer | None:
        """Try again after 0.5, 1, 2, 4, then every 5 s until the stream is back (None: closed meanwhile)."""
        backoff = Backoff()
        while not self._stop.is_set():
            if self._stop.wait(backoff.next_delay()):
                return None
            try:
                return self._connect()
            except VideoError:
                continue
        return None

    # -- the reader's thread --------------------------------------------------------------------------------------
    def _run(self, container: av.container.InputContainer) -> None:
        lost_at = 0.0
        first = True
        while not self._stop.is_set():
            self.connected = True
            if not first:
                self.reconnects += 1
                self._notices.say(f"{self.url} is back after {time.monotonic() - lost_at:.1f} s")
            why = self._read_all(container)
            container.close()
            self.connected = False
            if first and self._sequence == 0:  # never gave a picture: the opening fails
                with self._condition:
                    self._failure = why
                    self._condition.notify_all()
                return
            if self._stop.is_set():
                return
            first = False
            lost_at = time.monotonic()
            self._notices.say(f"{self.url} {why}: reconnecting (every few seconds); the last picture stays")
            reopened = self._reconnect()
            if reopened is None:
                return
            container = reopened

    def _read_all(self, container: av.container.InputContainer) -> str:
        """Decode until the stream ends or fails (or the source closes); says why it ended."""
        stream = container.streams.video[0]
        lag, skipping, passed_over = ReaderLag(), False, 0
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return "closed"
                behind = 0.0
                stamp = packet.dts if packet.dts is not None else packet.pts  # dts: in the order packets are sent
                if stamp is not None and packet.time_base is not None:
                    behind = lag.behind_s(float(stamp * packet.time_base), time.perf_counter())
                # A reader slower than the stream (a starved core) would fall further behind with every packet:
                # pass over packets up to a keyframe the reader is in time for (H.264 needs one to start again).
                if not skipping and behind > CATCH_UP_S:
                    skipping, passed_over = True, 0
                if skipping:
                    if not packet.is_keyframe or behind > CATCH_UP_S / 2:
                        passed_over += 1
                        self.dropped += 1
                        continue
                    skipping = False
                    self.caught_up += 1
                    self._notices.say(f"{self.url} fell behind: passed over {passed_over} frames to catch up")
                try:
                    pictures = packet.decode()
                except av.error.InvalidDataError:
                    self.undecodable += 1  # damage or garbage: the decoder finds its feet at the next keyframe
                    continue
                for picture in pictures:
                    self._publish(picture, stream.id == WALLCLOCK_PID, behind)
        except av.error.ExitError:
            return f"sent nothing for {self._read_timeout:g} s"
        except av.error.FFmpegError as error:
            return f"failed ({error.strerror or error})"
        return "ended"

    def _publish(self, picture: av.VideoFrame, stamped: bool, waited: float) -> None:
        """`waited`: how long its packet waited in a buffer before this reader took it (ReaderLag)."""
        now = time.perf_counter()
        live_at = now - waited
        if stamped and picture.pts is not None:
            age = ((round(time.time() * PTS_HZ) - picture.pts) % PTS_WRAP) / PTS_HZ
            if age < BELIEVABLE_AGE_S:
                live_at = now - age
        size = (picture.width, picture.height)
        if self._size is not None and size != self._size:
            self._notices.say(
                f"{self.url} changed its picture size from {self._size[0]}x{self._size[1]} to {size[0]}x{size[1]}"
            )
        self._size = size
        with self._condition:
            if self._sequence > self._delivered:
                self.dropped += 1  # the picture before was never taken: it is replaced
            self._latest, self._latest_live_at = picture, live_at
            self._sequence += 1
            self._condition.notify_all()

    # -- the pipeline's side --------------------------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The newest picture not handed out before; None when none came within `frame_wait` (the one on screen
        stays: the stream is slow, or lost and being tried again)."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._sequence > self._delivered, self._frame_wait):
                return None
            picture, live_at = self._latest, self._latest_live_at
            self._delivered = self._sequence
        assert picture is not None
        image: np.ndarray = picture.to_ndarray(format="rgb24")
        return Frame(image, None, time.perf_counter(), live_at=live_at)

    def take_notice(self) -> str | None:
        return self._notices.take()

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread.is_alive() and threading.current_thread() is not thread:
            thread.join(timeout=self._open_timeout + self._read_timeout + 1.0)
