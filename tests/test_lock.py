"""The lock files (requirements/*.txt): locked from this pyproject.toml, complete for it, with every pin hashed, and
the plain lock without PyTorch. `make test` runs scripts/check_lock.py first; these tests check the check."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
assert _spec is not None and _spec.loader is not None
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)


def pins(lock: str) -> dict[str, str]:
    """name -> version of every pin in requirements/LOCK whose markers hold here."""
    found = {}
    text = (ROOT / "requirements" / lock).read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement = Requirement(line.split(" --hash")[0].strip())
        if requirement.marker is None or requirement.marker.evaluate():
            (specifier,) = requirement.specifier
            found[requirement.name.lower().replace("_", "-")] = specifier.version
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_lock_is_locked_from_this_pyproject() -> None:
    assert check_lock.main([]) == 0, "run `make lock`"


@pytest.mark.parametrize(("lock", "extras"), [("app.txt", []), ("train.txt", ["train"]), ("dev.txt", ["train", "dev"])])
def test_every_requirement_is_pinned_to_a_version_it_allows(lock: str, extras: list[str]) -> None:
    meta = project()
    wanted = [*meta["dependencies"], *(text for extra in extras for text in meta["optional-dependencies"][extra])]
    pinned = pins(lock)
    for text in wanted:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        if name == "live-saliency" or (requirement.marker is not None and not requirement.marker.evaluate()):
            continue  # the project's own extras are listed above
        assert name in pinned, f"{name} is not in requirements/{lock}: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])


def test_the_plain_lock_has_no_pytorch_and_every_pin_has_a_hash() -> None:
    assert not {"torch", "torchvision", "timm", "onnx"} & set(pins("app.txt"))
    assert {"torch", "onnx", "timm"} <= set(pins("train.txt"))
    for lock in ("app.txt", "train.txt", "dev.txt", "stubs.txt"):
        entries = re.split(r"\n(?=[a-z])", (ROOT / "requirements" / lock).read_text())
        for entry in entries:
            if entry.strip() and not entry.startswith("#"):
                assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry[:200]


def test_a_changed_dependency_list_is_one_line_naming_what_changed(tmp_path: Path, capsys) -> None:
    (tmp_path / "requirements").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path in (ROOT / "requirements").iterdir():
        shutil.copy(path, tmp_path / "requirements" / path.name)
    assert check_lock.main([], root=tmp_path) == 0
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('"tqdm>=4.65",', '"tqdm>=4.65",\n    "rich>=13",', 1))
    assert check_lock.main([], root=tmp_path) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "(dependencies changed since" in message and "make lock" in message
    assert check_lock.main(["--stamp"], root=tmp_path) == 0 and check_lock.main([], root=tmp_path) == 0
    (tmp_path / "requirements" / "locked-from.json").unlink()  # never locked: every input is new
    assert check_lock.main([], root=tmp_path) == 1


def test_this_python_is_one_the_lock_was_made_for() -> None:
    minimum = project()["requires-python"].removeprefix(">=").split(",")[0]
    assert sys.version_info[:2] >= tuple(int(part) for part in minimum.split("."))
