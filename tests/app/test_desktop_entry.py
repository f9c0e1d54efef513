"""`saliency-app --install-desktop-entry` / `--uninstall-desktop-entry`: the launcher and the icons under a temporary
$XDG_DATA_HOME, in-process and as a real process (no display, no Qt, no torch), and the launcher read back as the
Desktop Entry spec reads it."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import pytest

from app import desktop_entry
from app.main import main

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path("applications/live-saliency.desktop")
PNG = Path("icons/hicolor/256x256/apps/live-saliency.png")
SVG = Path("icons/hicolor/scalable/apps/live-saliency.svg")


def read_entry(path: Path) -> dict[str, str]:
    """The [Desktop Entry] group as written (keys case-sensitive, values raw)."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def exec_arguments(value: str) -> list[str]:
    """The Exec value as a launcher reads it: string escapes first, then the quoting (spaces split outside double
    quotes; inside them a backslash escapes " ` $ \\), then %% as %. Not shlex: it keeps the backslash of \\$."""
    text = value.replace("\\\\", "\0").replace("\\s", " ").replace("\\n", "\n").replace("\\t", "\t")
    text = text.replace("\0", "\\")
    arguments: list[str] = []
    current: list[str] | None = None
    characters = iter(text)
    for char in characters:
        if char == " ":
            if current is not None:
                arguments.append("".join(current))
            current = None
            continue
        current = [] if current is None else current
        if char != '"':
            current.append(char)
            continue
        for inner in characters:
            if inner == '"':
                break
            current.append(next(characters) if inner == "\\" else inner)
    if current is not None:
        arguments.append("".join(current))
    return [argument.replace("%%", "%") for argument in arguments]


def _without_display(tmp_path: Path, data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    return {**env, "XDG_DATA_HOME": str(data), "HOME": str(tmp_path / "home")}


def test_data_home_follows_the_xdg_base_directory_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert desktop_entry.data_home() == tmp_path / "data"
    for ignored in ("", "relative/data"):  # the spec: an empty or relative value is ignored
        monkeypatch.setenv("XDG_DATA_HOME", ignored)
        assert desktop_entry.data_home() == tmp_path / ".local" / "share"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert desktop_entry.data_home() == tmp_path / ".local" / "share"


def test_install_then_uninstall_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    # somebody else's files in the same folders: uninstall must leave them
    others = [data / "applications" / "other.desktop", data / PNG.parent / "other.png", data / SVG.parent / "x.svg"]
    for other in others:
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text("not ours")

    assert main(["--install-desktop-entry"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and str(data / LAUNCHER) in out and str(data / PNG) in out and str(data / SVG) in out
    entry = read_entry(data / LAUNCHER)
    assert entry["Type"] == "Application" and entry["Name"] == "Live saliency explainer"
    assert entry["Icon"] == "live-saliency" and entry["Terminal"] == "false" and entry["Comment"]
    assert entry["Categories"].endswith(";") and "Science" in entry["Categories"].split(";")
    assert entry["StartupWMClass"] == "Live saliency explainer"  # what main() names the QApplication
    icon = cv2.imread(str(data / PNG), cv2.IMREAD_UNCHANGED)
    assert icon is not None and icon.shape == (256, 256, 4)
    assert icon[0, 0, 3] == 0 and icon[128, 128, 3] == 255  # transparent corners, an opaque middle
    assert ElementTree.fromstring((data / SVG).read_bytes()).tag == "{http://www.w3.org/2000/svg}svg"
    first = [(data / path).read_bytes() for path in (LAUNCHER, PNG, SVG)]
    assert main(["--install-desktop-entry"]) == 0  # again: the same files, nothing else
    assert [(data / path).read_bytes() for path in (LAUNCHER, PNG, SVG)] == first
    capsys.readouterr()

    assert main(["--uninstall-desktop-entry"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "removed" in out and str(data / LAUNCHER) in out
    assert not any((data / path).exists() for path in (LAUNCHER, PNG, SVG))
    assert all(other.read_text() == "not ours" for other in others)
    assert main(["--uninstall-desktop-entry"]) == 0  # nothing left: says so, no error
    assert "nothing to remove" in capsys.readouterr().out


def test_a_real_process_installs_without_a_display_qt_or_torch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _without_display(tmp_path, data)
    command = [sys.executable, "-X", "importtime", "-m", "app.main", "--install-desktop-entry"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and str(data / LAUNCHER) in result.stdout
    # -X importtime: one "import time: ... | package" line per module imported
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines}
    assert "cv2" in imported  # the listing works: the icon is drawn with OpenCV
    assert not {name for name in imported if name.split(".")[0] in ("torch", "PyQt6")}
    assert read_entry(data / LAUNCHER)["Name"] == "Live saliency explainer"
    assert cv2.imread(str(data / PNG)).shape == (256, 256, 3)

    probe = "import sys; from app.main import main; code = main(['--uninstall-desktop-entry']); "
    probe += "print(code, 'torch' in sys.modules, 'PyQt6' in sys.modules)"
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 False False"
    assert not (data / LAUNCHER).exists() and not (data / PNG).exists() and not (data / SVG).exists()


def test_exec_runs_the_script_beside_python_else_python_m(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment = tmp_path / "my env" / "bin"  # a space: the spec's quoting
    environment.mkdir(parents=True)
    python = environment / "python"
    monkeypatch.setattr(sys, "executable", str(python))
    entry = desktop_entry.desktop_file()
    assert exec_arguments(read_exec(entry)) == [str(python), "-m", "app.main"]

    script = environment / "saliency-app"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    entry = desktop_entry.desktop_file()
    assert exec_arguments(read_exec(entry)) == [str(script)]
    assert read_exec(entry).startswith('"') and f"TryExec={script}\n" in entry


@pytest.mark.parametrize("name", ['$odd "py\\thon%', "plain"])
def test_exec_quoting_reads_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    python = tmp_path / name
    monkeypatch.setattr(sys, "executable", str(python))
    assert exec_arguments(read_exec(desktop_entry.desktop_file())) == [str(python), "-m", "app.main"]


def read_exec(entry: str) -> str:
    return next(line.removeprefix("Exec=") for line in entry.splitlines() if line.startswith("Exec="))


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-validate is not installed")
@pytest.mark.parametrize("executable", [None, '/opt/my env/$odd "py\\thon%'])
def test_the_launcher_passes_desktop_file_validate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, executable: str | None
) -> None:
    if executable is not None:
        monkeypatch.setattr(sys, "executable", executable)
    launcher, *_icons = desktop_entry.install(tmp_path)
    result = subprocess.run(["desktop-file-validate", str(launcher)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr  # no error, warning or hint


def test_cache_tools_missing_or_failing_change_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """update-desktop-database always; gtk-update-icon-cache only where a cache exists (as xdg-icon-resource)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    calls = tmp_path / "calls"
    for tool in ("update-desktop-database", "gtk-update-icon-cache"):
        fake = tools / tool
        fake.write_text(f'#!/bin/sh\necho {tool} "$@" >> "{calls}"\nexit 1\n')
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    data = tmp_path / "data"
    assert len(desktop_entry.install(data)) == 3
    assert calls.read_text().splitlines() == [f"update-desktop-database -q {data / 'applications'}"]

    (data / "icons" / "hicolor" / "icon-theme.cache").write_bytes(b"")
    calls.unlink()
    desktop_entry.install(data)
    assert calls.read_text().splitlines()[-1] == f"gtk-update-icon-cache -q -t -f {data / 'icons' / 'hicolor'}"

    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert len(desktop_entry.uninstall(data)) == 3
    assert (data / "icons" / "hicolor" / "icon-theme.cache").exists()  # not ours: stays


def test_a_folder_that_cannot_be_written_is_one_line_and_status_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocked))  # the folders would go under a file
    assert main(["--install-desktop-entry"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("saliency-app: error: cannot install the desktop entry")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--install-desktop-entry", "--uninstall-desktop-entry"], "not allowed with argument --install-desktop-entry"),
        (["--install-desktop-entry", "--benchmark-frames", "5"], "not allowed with --benchmark-frames"),
        (["--uninstall-desktop-entry", "--benchmark-seeks", "3"], "not allowed with --benchmark-seeks"),
        (["--install-desktop-entry", "--backend", "torch-cpu", "--no-evidence"], "not allowed with --backend, --no-"),
    ],
)
def test_the_flags_take_no_window_option(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []  # refused before writing anything


def test_help_explains_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--install-desktop-entry" in text and "--uninstall-desktop-entry" in text
    assert "application menu" in text and "XDG_DATA_HOME" in text
