"""Command-line arguments, checked before any work (for `python -m engine` and the app), without torch.

A bad argument is a usage error: one line on stderr and exit status 2, before a model loads and before an output
file is opened. Single values are checked by argparse `type=` callables (they raise `ArgumentTypeError`, which
argparse reports against the option's name); checks that need two arguments (a class against the model's class
list, an output against the input) raise the same error after parsing, for `Parser.error` to report.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from engine.classes import resolve_class
from engine.contract import AUTO, ClassInfo
from engine.errors import ModelFileError, UnknownClassError, VideoError
from engine.modelfiles.card import card_classes, check_path, read_card

ArgumentTypeError = argparse.ArgumentTypeError

# Containers that OpenCV's writer fills with the `mp4v` codec (engine/video/reader.py), each checked to play back.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (`PROG: error: MESSAGE`), exit status 2; subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.splitlines())} (see {self.prog} --help)\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """A `type=` for whole numbers >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def fraction(text: str) -> float:
    """A `type=` for a number in [0, 1] (an opacity)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def positive(text: str) -> float:
    """A `type=` for a number > 0 (seconds)."""
    value = _number(text)
    if value <= 0.0:
        raise ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def view_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT in pixels, both at least 1 (e.g. 576x432)."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT in pixels, e.g. 576x432, not {text!r}")
    return int(width), int(height)


def video_file(text: str) -> Path:
    """A `type=` for an input video: it exists and OpenCV decodes a first frame from it."""
    from engine.video.reader import VideoReader  # OpenCV: loaded only when a video is checked

    try:
        VideoReader(text).close()
    except VideoError as error:
        raise ArgumentTypeError(str(error)) from None
    return Path(text)


def model_file(text: str) -> Path:
    """A `type=` for a model file: it exists, is no pickle, and holds a card this program reads (header only)."""
    try:
        path = check_path(text)
        read_card(path)
    except ModelFileError as error:
        raise ArgumentTypeError(str(error)) from None
    return path


def model_classes(path: Path) -> tuple[ClassInfo, ...]:
    """The class list of the black box that the model at `path` explains, from its card."""
    try:
        return card_classes(read_card(path))
    except ModelFileError as error:
        raise ArgumentTypeError(str(error)) from None


def target_class(text: str, classes: tuple[ClassInfo, ...]) -> int:
    """`--class` text -> a class index of `classes`, or AUTO for 'auto'."""
    if text.strip().lower() == "auto":
        return AUTO
    try:
        return resolve_class(text, classes)
    except UnknownClassError as error:
        raise ArgumentTypeError(f"argument --class: {error}") from None


def video_output(text: str) -> Path:
    """A `type=` for a video to write: a container OpenCV writes, in a folder that exists (or can be made) and is
    writable."""
    path = Path(text)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ArgumentTypeError(f"{text!r}: the name must end in one of {', '.join(VIDEO_SUFFIXES)}")
    return output_file(text)


def output_file(text: str) -> Path:
    """A `type=` for a file to write: not a folder, and its folder writable."""
    path = Path(text)
    if path.is_dir():
        raise ArgumentTypeError(f"{text} is a folder; name a file")
    _check_writable_folder(path.parent)
    return path


def output_folder(text: str) -> Path:
    """A `type=` for a folder to write into: an existing writable folder, or one that can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ArgumentTypeError(f"{text} is a file, not a folder")
    _check_writable_folder(path)
    return path


def check_not_input(output: Path, source: Path) -> None:
    """Writing the output must not destroy the input."""
    same = output.exists() and os.path.samefile(output, source)
    if same or output.resolve() == source.resolve():
        raise ArgumentTypeError(f"the output {output} is the input file; write to another file")


def _check_writable_folder(folder: Path) -> None:
    """The nearest existing folder on the way to `folder` must be writable (the missing ones are made there)."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ArgumentTypeError(f"{existing} is a file, so no folder can be made inside it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ArgumentTypeError(f"the folder {existing} is not writable")
