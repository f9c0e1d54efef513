"""A real clip served as a live MPEG-TS stream on 127.0.0.1 (scripts/serve_stream.py's Sender, in a thread), paced in
real time, for the tests of live sources: it can stop and start again, change its picture size, and a socket beside
it can send garbage."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SERVE_SCRIPT = ROOT / "scripts" / "serve_stream.py"


def serve_stream_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serve_stream", SERVE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_stream"] = module  # (its dataclass looks its module up)
    spec.loader.exec_module(module)
    return module


SERVE = serve_stream_module()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveStream:
    """`start()` sends `clips` to `url` in a thread until `stop()`; again as often as wanted."""

    def __init__(self, url: str, clips: list, switch_after: int | None = None) -> None:
        self.url = url
        self.clips = clips
        self.switch_after = switch_after
        self._sender = None
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def start(self) -> LiveStream:
        self._sender = SERVE.Sender(self.url, self.clips, self.switch_after)
        self._thread = threading.Thread(target=self._run, args=(self._sender,), name="test-sender", daemon=True)
        self._thread.start()
        return self

    def _run(self, sender) -> None:
        try:
            sender.run()
        except Exception as error:  # noqa: BLE001 (a TCP receiver that left; said to the test)
            self.errors.append(error)

    @property
    def sent(self) -> int:
        return 0 if self._sender is None else self._sender.sent

    def stop(self) -> None:
        if self._sender is not None:
            self._sender.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the sender did not stop"


def send_garbage(port: int, datagrams: int, seed: int = 0) -> None:
    """Random bytes to 127.0.0.1:port, in datagrams of MPEG-TS's size."""
    noise = os.urandom(1316 * 8) if seed == 0 else bytes((seed * 7919 + i) % 251 for i in range(1316 * 8))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(datagrams):
            start = (index * 1316) % (len(noise) - 1316)
            sock.sendto(noise[start : start + 1316], ("127.0.0.1", port))
