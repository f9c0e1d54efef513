"""What the trainer's commands share on the command line: arguments checked before any work, one line per error.

Every command (`python -m trainer train|evaluate|grid|finalise`) answers in the same way:
- a bad argument (a wrong type or range, a file that does not exist or does not open, data that do not fit the black
  box, options that contradict each other) is found before a model or data are loaded and before anything is
  written: one line on stderr, exit status 2 (`UsageError`);
- a failure during the work (the project's own `SaliencyError`): one line on stderr, exit status 1;
- Ctrl-C: one line, exit status 130. Never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from engine.errors import SaliencyError

if TYPE_CHECKING:
    import torch

USAGE_STATUS = 2
FAILURE_STATUS = 1
INTERRUPTED_STATUS = 130


class UsageError(SaliencyError):
    """A command-line argument is wrong; found before any work, answered with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as UsageError (one line, by `run_command`) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def run_command(prog: str, work: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a command's `work` and turn what it raises into one line on stderr and an exit status."""
    try:
        return work()
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return USAGE_STATUS
    except SaliencyError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return FAILURE_STATUS
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return INTERRUPTED_STATUS


@contextmanager
def argument_checks(option: str = "") -> Iterator[None]:
    """The project's errors raised inside are answers to bad arguments (a data folder that does not fit, a model
    file that does not open, ...): they become UsageErrors, exit status 2, their message led by `option`."""
    try:
        yield
    except UsageError:
        raise
    except SaliencyError as error:
        raise UsageError(f"{option}: {error}" if option else str(error)) from error


# --- argparse types: numbers in a range -----------------------------------------------------------------------


def number(
    kind: type[int] | type[float],
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    multiple_of: int | None = None,
) -> Callable[[str], Any]:
    """An argparse `type` that reads an int or float and checks its range, e.g. number(int, 1) for counts >= 1."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    what = ("a whole number" if kind is int else "a number") + (" " + " and ".join(bounds) if bounds else "")
    if multiple_of is not None:
        what += f", a multiple of {multiple_of}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        odd = multiple_of is not None and value % multiple_of != 0
        if too_low or too_high or odd or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


COUNT = number(int, 1)  # steps, batches, images, every-N: at least 1
COUNT_OR_ZERO = number(int, 0)
POSITIVE = number(float, 0, low_open=True)
NON_NEGATIVE = number(float, 0)
PROBABILITY = number(float, 0, 1)
OPEN_FRACTION = number(float, 0, 1, low_open=True, high_open=True)


# --- checks of files and devices ------------------------------------------------------------------------------


def existing_folder(option: str, path: Path | str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{option} {path}: {'not a folder' if path.exists() else 'no such folder'}")
    return path


def model_card(option: str, path: Path | str) -> dict[str, Any]:
    """The card of a model file (no weights loaded): the file exists, opens and was written by this trainer.
    `option`: the option that named the file ("" for a positional argument: the message names the file)."""
    from engine.modelfiles.modelfile import read_card

    with argument_checks(option):
        return read_card(path)


def output_folder(option: str, path: Path | str) -> Path:
    """A folder to write into: it may exist (as a folder), or will be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder")
    _parent_writable(option, path)
    return path


def output_file(option: str, path: Path | str, suffixes: tuple[str, ...], kind: str = "") -> Path:
    """A file to write: one of `suffixes` (`kind` names them when they are many), not a folder, in a folder that
    exists or can be made."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        endings = kind or " or ".join(suffixes)
        raise UsageError(f"{option} {path}: the file name must end in {endings}")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    _parent_writable(option, path)
    return path


PICTURE = "a picture format Pillow writes (.png, .jpg, .webp, ...)"


def image_suffixes() -> tuple[str, ...]:
    """The file name endings PIL can write pictures to (.png, .jpg, ...)."""
    from PIL import Image

    Image.init()
    return tuple(sorted(suffix for suffix, name in Image.registered_extensions().items() if name in Image.SAVE))


def _parent_writable(option: str, path: Path) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: no permission to write in {parent}")


def check_device(option: str, name: str) -> str:
    """auto, cpu, cuda or cuda:N, and CUDA only where torch sees a GPU."""
    import torch

    if name in ("auto", "cpu"):
        return name
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise UsageError(f"{option} must be auto, cpu, cuda or cuda:N, not {name!r}")
    if not torch.cuda.is_available():
        raise UsageError(f"{option} {name}: torch sees no CUDA GPU here; use {option} cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise UsageError(f"{option} {name}: there are {torch.cuda.device_count()} CUDA GPU(s) here")
    return name


def device_for(option: str, name: str) -> torch.device:
    """A checked --device as a torch device, auto being CUDA where torch sees a GPU."""
    import torch

    check_device(option, name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
