"""The wheel carries everything the app needs at run time, and an installed copy finds it outside the checkout.

A real build with the project's own backend, the way `python -m build` does it: the sdist from the checkout, then
the wheel from the unpacked sdist (so the sdist is proven to hold what builds the wheel). Offline: no build
isolation, setuptools from the dev extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS_PACKAGE = "live_saliency_assets"
pytestmark = pytest.mark.slow

# Runs a PEP 517 hook of setuptools' backend in the current folder: `python -c HOOK build_sdist OUT`.
HOOK = "import sys\nfrom setuptools import build_meta\ngetattr(build_meta, sys.argv[1])(sys.argv[2])"


def _run_hook(hook: str, source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", HOOK, hook, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # setuptools' deprecations (e.g. of the license table) and "package would be ignored" notices are warnings
    # that keep the build going; a clean configuration has none.
    for notice in ("Deprecat", "absent from the `packages` configuration"):
        assert notice not in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
    (built,) = out.iterdir()
    return built


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel)."""
    work = tmp_path_factory.mktemp("build")
    sdist = _run_hook("build_sdist", ROOT, work / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    wheel = _run_hook("build_wheel", unpacked, work / "wheel")
    return sdist, wheel


def _bundled_model_folders() -> list[Path]:
    folders = sorted(path for path in (ROOT / "assets" / "models").iterdir() if path.is_dir())
    assert folders, "assets/models holds no model folder"
    return folders


def test_the_wheel_holds_every_bundled_model_the_demo_clip_and_the_class_list(built: tuple[Path, Path]) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(name for name in names if name.endswith("entry_points.txt"))).decode()
    for folder in _bundled_model_folders():
        for suffix in (".safetensors", ".card.json", ".saliency.onnx", ".classifier.onnx", ".weights.bin"):
            name = f"{ASSETS_PACKAGE}/models/{folder.name}/{folder.name}{suffix}"
            assert name in names, f"{name} is not in the wheel"
            assert sizes[name] == (folder / f"{folder.name}{suffix}").stat().st_size
    assert f"{ASSETS_PACKAGE}/models/lite0-default/lite0-default.safetensors" in names  # the default model
    assert f"{ASSETS_PACKAGE}/models/lite2-default/lite2-default.safetensors" in names  # the second black box's
    assert sizes[f"{ASSETS_PACKAGE}/demo/box.mp4"] == (ROOT / "assets" / "demo" / "box.mp4").stat().st_size
    assert "engine/data/imagenet_classes.tsv" in names
    assert f"{ASSETS_PACKAGE}/README.md" in names  # provenance and licences travel with the files
    assert not [name for name in names if name.endswith("grid.png")], "the previews are not needed at run time"
    for script in ("saliency-app = app.main:main", "saliency-engine = engine.__main__:main", "saliency-train"):
        assert script in entry_points
    assert "License-Expression: Apache-2.0" in metadata


def test_the_wheel_holds_every_package_of_the_checkout(built: tuple[Path, Path]) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for top in ("app", "engine", "trainer"):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.relative_to(ROOT).as_posix()
            assert relative in names, f"{relative}: add its package to [tool.setuptools] packages in pyproject.toml"
    assert f"{ASSETS_PACKAGE}/__init__.py" in names


def test_the_sdist_holds_the_sources_of_the_wheel(built: tuple[Path, Path]) -> None:
    sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for folder in _bundled_model_folders():
        assert f"assets/models/{folder.name}/{folder.name}.safetensors" in names
    assert {"pyproject.toml", "README.md", "assets/demo/box.mp4", "engine/data/imagenet_classes.tsv"} <= names


def test_an_installed_wheel_finds_its_assets_outside_the_checkout(built: tuple[Path, Path], tmp_path: Path) -> None:
    _, wheel = built
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    code = (
        "from engine import paths\n"
        "from engine.modelfiles.card import read_card\n"
        "print(paths.ASSETS)\n"
        "print(paths.DEFAULT_MODEL.is_file(), paths.DEMO_CLIP.is_file())\n"
        "print(read_card(paths.DEFAULT_MODEL)['blackbox']['name'])\n"
        "print(','.join(path.stem for path in paths.bundled_models()))\n"
        "print(','.join(read_card(path)['blackbox']['name'] for path in paths.bundled_models()))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy on the path: the checkout is neither the working folder nor on PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("SALIENCY_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assets, present, blackbox, models, blackboxes = result.stdout.splitlines()
    assert Path(assets) == site / ASSETS_PACKAGE
    assert present == "True True"
    assert blackbox == "efficientnet_lite0"
    assert models.split(",") == [folder.name for folder in _bundled_model_folders()]
    assert blackboxes.split(",") == ["efficientnet_lite0", "efficientnet_lite2"]  # one model per black box


def test_the_plain_install_runs_the_app_without_pytorch(built: tuple[Path, Path], tmp_path: Path) -> None:
    """`pip install live-saliency` as a user gets it: a fresh environment with the plain lock (no PyTorch) and the
    wheel. The app explains the demo clip with the bundled model's exported graphs; what needs PyTorch says so in
    one line, with what to install."""
    _, wheel = built
    # nothing of the caller's path: a checkout on PYTHONPATH (with the egg-info the sdist build leaves there) would
    # make pip take the project for installed and skip the wheel
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SALIENCY_MODEL")}
    venv = tmp_path / "plain"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    lock = ROOT / "requirements" / "app.txt"
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True, capture_output=True, timeout=900, env=env)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300, env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env |= {"SALIENCY_CACHE": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / command[0]), *command[1:]],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    probe = run("python", "-c", "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('onnx'))")
    assert probe.stdout.split() == ["None", "None"], probe.stdout + probe.stderr
    info = run("saliency-engine", "info")
    assert info.returncode == 0 and "PyTorch is not installed" in info.stdout, info.stdout + info.stderr
    demo = site_file(venv, ASSETS_PACKAGE, "demo", "box.mp4")
    shown = run("saliency-app", "--source", str(demo), "--benchmark-frames", "6", "--backend", "onnxruntime")
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert "6 explained frames shown" in shown.stdout and "lite0-default (efficientnet_lite0)" in shown.stdout
    # a model file of the user's without exported graphs: one line, what to install or run
    bare = elsewhere / "mine.safetensors"
    bundled = site_file(venv, ASSETS_PACKAGE, "models", "lite0-default", "lite0-default.safetensors")
    bare.write_bytes(bundled.read_bytes())
    code = "from engine.api import Explainer\nimport sys\nExplainer(sys.argv[1], 'onnxruntime')"
    refused = run("python", "-c", code, str(bare))
    assert refused.returncode != 0 and "saliency-engine export mine.safetensors" in refused.stderr
    assert "pip install 'live-saliency[train]'" in refused.stderr
    export = run("saliency-engine", "export", str(bare), "--out", str(elsewhere / "out"))
    assert export.returncode == 1 and export.stderr.count("\n") == 1, export.stderr
    assert "needs PyTorch and the training extra" in export.stderr and "[train]" in export.stderr
    train = run("saliency-train", "train", "--help")
    assert train.returncode == 1 and "needs PyTorch and the training extra" in train.stderr, train.stderr


def site_file(venv: Path, *parts: str) -> Path:
    """A file of an installed package in `venv`."""
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    return site.joinpath(*parts)
