"""The one atomic writer behind model files, exported graphs, engines and checkpoints."""

import os
import stat

import pytest

from engine.paths import replace_atomically, write_atomic


def test_written_files_get_the_umask_permissions_not_the_temporary_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "sub" / "model.onnx", b"bytes")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")

    def crash(tmp: str) -> None:
        with open(tmp, "wb") as stream:
            stream.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(path, crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
