"""Serve a clip as a live MPEG-TS stream, paced in real time and looping, as a webcam or a camera server would:

    python scripts/serve_stream.py CLIP --udp 127.0.0.1:PORT      # the app: --source udp://127.0.0.1:PORT
    python scripts/serve_stream.py CLIP --tcp 127.0.0.1:PORT      # one receiver at a time: tcp://127.0.0.1:PORT

The clip is decoded and encoded once at the start (H.264, libx264 ultrafast/zerolatency: no B-frames, a keyframe
every second with its parameter sets, so a receiver that joins at any moment shows a picture within a second); then
its packets are sent at the clip's frame rate, round and round. Each frame's time stamp is the sender's wall clock
at the moment it is sent (90 kHz, as MPEG-TS carries it, modulo 2^33), and the video stream's PID says so
(`WALLCLOCK_PID`; the service name says it too, but receivers through PyAV do not see it): a receiver on the same
clock (this machine, or one synchronised by NTP) knows how far behind the sender each picture is
(app/playback/stream.py).

Serving TCP holds Python's lock while FFmpeg waits for a receiver (PyAV opens the output at the first packet): run it
as a process of its own, not in a thread beside other Python work.

`--size WxH` sends at another size; `--change-size-after N` switches between the size and half of it every N frames
(a stream whose resolution changes mid-way). Ctrl+C stops. Also used by the tests (`Sender`, in a thread of their own).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.playback.stream import PTS_HZ, WALLCLOCK_PID  # noqa: E402


@dataclass(frozen=True)
class EncodedClip:
    width: int
    height: int
    fps: Fraction
    packets: list[tuple[bytes, bool]]  # (H.264 Annex B bytes, keyframe), one per frame


def encode_clip(path: str | Path, size: tuple[int, int] | None = None, limit: int | None = None) -> EncodedClip:
    """The clip's frames as H.264 packets that each stand alone in a stream (no B-frames, in-band SPS/PPS)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = stream.average_rate or Fraction(30)
        width, height = size or (stream.codec_context.width, stream.codec_context.height)
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = Fraction(1, int(round(fps)))
        encoder.framerate = fps
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "g": str(int(round(fps))),
            "bf": "0",
            "repeat-headers": "1",
        }
        packets: list[tuple[bytes, bool]] = []
        for index, frame in enumerate(container.decode(stream)):
            if limit is not None and index >= limit:
                break
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            picture.pts, picture.time_base = index, encoder.time_base
            packets.extend((bytes(packet), packet.is_keyframe) for packet in encoder.encode(picture))
        packets.extend((bytes(packet), packet.is_keyframe) for packet in encoder.encode(None))
    return EncodedClip(width, height, fps, packets)


class Sender:
    """Sends clips (one after the other, round and round: each switched to after the one before sent `switch_after`
    frames)
    to `url` (udp://HOST:PORT, or tcp://HOST:PORT?listen: waits for a receiver) until `stop()`."""

    def __init__(self, url: str, clips: list[EncodedClip], switch_after: int | None = None) -> None:
        self.url = url
        self.clips = clips
        self.switch_after = switch_after
        self.sent = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        url = f"{self.url}?pkt_size=1316" if self.url.startswith("udp:") else self.url
        # no muxing delay, each packet out at once, video PES lengths written (a receiver ends a frame without
        # waiting for the next one's start)
        options = {"max_delay": "0", "flush_packets": "1", "omit_video_pes_length": "0"}
        container = av.open(url, "w", format="mpegts", container_options=options)
        container.metadata["service_name"] = "wallclock-pts"
        container.metadata["service_provider"] = "serve_stream.py"
        try:
            self._send(container)
        finally:
            container.close()

    def _send(self, container: av.container.OutputContainer) -> None:
        first = self.clips[0]  # one stream: a later clip of another size changes the picture's size mid-way
        stream = container.add_stream("h264", rate=first.fps)
        stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
        stream.time_base = Fraction(1, PTS_HZ)
        stream.id = WALLCLOCK_PID
        clip_index, frame_in_clip = 0, 0
        interval = 1.0 / float(self.clips[0].fps)
        due = time.perf_counter()
        last_pts = -1
        while not self._stop.is_set():
            clip = self.clips[clip_index]
            data, keyframe = clip.packets[frame_in_clip % len(clip.packets)]
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # far behind (a stalled machine): start the pace again rather than burst
                due = time.perf_counter()
            due += interval
            packet = av.Packet(data)
            pts = max(round(time.time() * PTS_HZ), last_pts + 1)
            last_pts = pts
            packet.pts = packet.dts = pts
            packet.time_base = Fraction(1, PTS_HZ)
            packet.is_keyframe = keyframe
            packet.stream = stream
            container.mux(packet)
            self.sent += 1
            frame_in_clip += 1
            if self.switch_after is not None and frame_in_clip >= self.switch_after:
                clip_index, frame_in_clip = (clip_index + 1) % len(self.clips), 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--udp", metavar="HOST:PORT", help="send MPEG-TS over UDP to HOST:PORT")
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen on HOST:PORT and serve one receiver at a time")
    parser.add_argument("--size", metavar="WxH", help="send at this size (default: the clip's)")
    parser.add_argument(
        "--change-size-after", type=int, metavar="N", help="every N frames, switch between the size and half of it"
    )
    parser.add_argument("--frames", type=int, metavar="N", help="loop the clip's first N frames only")
    args = parser.parse_args(argv)
    size = tuple(int(part) for part in args.size.split("x")) if args.size else None
    clip = encode_clip(args.clip, size, args.frames)  # type: ignore[arg-type]
    clips = [clip]
    if args.change_size_after:
        clips.append(encode_clip(args.clip, (clip.width // 2 // 2 * 2, clip.height // 2 // 2 * 2), args.frames))
    url = f"udp://{args.udp}" if args.udp else f"tcp://{args.tcp}?listen=1"
    print(f"serving {args.clip.name} ({clip.width}x{clip.height}, {float(clip.fps):.0f} frames/s) at {url}", flush=True)
    try:
        while True:
            sender = Sender(url, clips, args.change_size_after)
            try:
                sender.run()
            except (OSError, av.error.FFmpegError) as error:
                if args.udp:
                    raise
                print(f"receiver gone ({error}); waiting for the next one", flush=True)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
