"""Qt's system libraries: a missing one is one line naming it and its package, before Qt starts (read with ldd)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.system_libraries import debian_package, missing_libraries, missing_message, xcb_plugin

PROJECT = Path(__file__).resolve().parents[2]


def test_the_installed_plugin_is_found_and_its_libraries_are_here() -> None:
    plugin = xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    assert missing_libraries(plugin) == []  # this machine runs the app under Xvfb: nothing missing


def test_package_names_follow_debians_rule() -> None:
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"
    assert debian_package("libEGL.so.1") == "libegl1"


@pytest.fixture
def library_with_a_missing_dependency(tmp_path: Path) -> Path:
    """A real shared library linked against one that is then removed: ldd says "not found", as for Qt's plugin on a
    system without libxcb-cursor0."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build a shared library")
    (tmp_path / "gone.c").write_text("int gone(void) { return 1; }\n")
    (tmp_path / "user.c").write_text("int gone(void);\nint user(void) { return gone(); }\n")
    gone = tmp_path / "libsaliencygone.so.3"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libsaliencygone.so.3", "-o", gone, tmp_path / "gone.c"], check=True
    )
    (tmp_path / "libsaliencygone.so").symlink_to(gone.name)
    user = tmp_path / "libuser.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", user, tmp_path / "user.c", f"-L{tmp_path}", "-lsaliencygone"], check=True
    )
    gone.unlink()
    return user


def test_a_missing_library_is_named_with_its_package(library_with_a_missing_dependency: Path) -> None:
    missing = missing_libraries(library_with_a_missing_dependency)
    assert missing == ["libsaliencygone.so.3"]
    message = missing_message(missing)
    assert "\n" not in message and "libsaliencygone.so.3" in message and "apt-get install libsaliencygone3" in message


def test_the_app_says_it_in_one_line_before_qt_starts(library_with_a_missing_dependency: Path, tmp_path) -> None:
    """The real entry point, with Qt's plugin replaced by the library above (sitecustomize, in the child only)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import app.system_libraries as libraries\n"
        f"libraries.xcb_plugin = lambda: __import__('pathlib').Path({str(library_with_a_missing_dependency)!r})\n"
    )
    env = {**os.environ, "DISPLAY": ":57", "PYTHONPATH": f"{hook}{os.pathsep}{PROJECT}"}
    env.pop("QT_QPA_PLATFORM", None)
    done = subprocess.run(
        [sys.executable, "-c", "import sys, app.main; sys.exit(app.main.main([]))"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=PROJECT,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("saliency-app: error: Qt's window-system plugin (xcb) needs system libraries")
    assert "libsaliencygone.so.3" in done.stderr
