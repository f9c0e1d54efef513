"""Where the bundled assets and the user's cache live."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_PACKAGE = "live_saliency_assets"  # the repository's assets/ folder, as installed (pyproject.toml)


def _assets_folder() -> Path:
    """The checkout's assets/ when this engine runs from a checkout (also an editable install), else the installed
    package. The checkout comes first: a worktree run with PYTHONPATH must read its own assets, not those of the
    checkout that an editable install points at."""
    checkout = PROJECT_ROOT / "assets"
    if (PROJECT_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    try:
        # A wheel installs unpacked, so the package's files are plain files on disk.
        return Path(str(resources.files(ASSETS_PACKAGE)))
    except ModuleNotFoundError:  # neither: the paths below still say where the files were expected
        return checkout


ASSETS = _assets_folder()
DEFAULT_MODEL = ASSETS / "models" / "lite0-default" / "lite0-default.safetensors"
DEMO_CLIP = ASSETS / "demo" / "box.mp4"


def default_model_path() -> Path:
    """The bundled default model, or $SALIENCY_MODEL."""
    return Path(os.environ.get("SALIENCY_MODEL", DEFAULT_MODEL))


def bundled_models() -> list[Path]:
    """Every bundled model file (assets/models/NAME/NAME.safetensors), by name."""
    return sorted((ASSETS / "models").glob("*/*.safetensors"))


def data_root() -> Path:
    """The shared data folder: $SALIENCY_DATA, else ../shared/data beside the project."""
    return Path(os.environ.get("SALIENCY_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    """Built engines (ONNX, TensorRT plans): $SALIENCY_CACHE or the platform's user cache folder."""
    if "SALIENCY_CACHE" in os.environ:
        return Path(os.environ["SALIENCY_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("live-saliency"))


def replace_atomically(path: Path, write: Callable[[str], object]) -> Path:
    """Write `path` through `write(temporary_name)` in the same folder, then rename: a crash or Ctrl-C mid-write leaves
    the old file (or none), never half a file. The result gets the usual permissions (0666 minus the umask), not the
    0600 of a temporary file, so model files and engines can be shared like any other file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (model files, exports, data sets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> Path:
    return replace_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it, so put it back at once
    os.umask(mask)
    return mask
