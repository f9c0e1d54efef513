"""Where a model came from, recorded so that it means the same on every machine: no absolute path of the machine that
trained it ever reaches a model card; data are recorded by name, content hash and count.

The content hash of a data set (`content_sha256`): sha256 over the lines "NAME<TAB>SHA256" of every file the data
set is read from (its labels.csv or boxes.csv and each image listed, or the one video), sorted by NAME, the file's
path relative to the data folder (so that ImageFolder labels, which are folder names, count). Why this one: it
changes when any image's bytes or any label change (a hash of labels.csv and the file sizes would not see a photo
re-encoded at the same size), it does not depend on where the folder lives or on the order a disk lists files, and
reading the files once more costs little next to decoding them (the 51 MB of 1750 training photos: well under a
second). A file that is listed but missing hashes as "missing".

Paths that are still worth recording (the run folder, the model a run started from, the command line) are written by
`portable_path`: `$SALIENCY_DATA/...` under the data folder, relative to the project inside the project, else
`.../LAST`, the last part of the path with its beginning left out. `portable` applies that to every path inside free
text (error messages, commands) of a whole card section, so that a field added later cannot leak one either.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from engine.paths import PROJECT_ROOT, data_root, file_sha256

DATA_VARIABLE = "$SALIENCY_DATA"
HASH_RECIPE = "sha256 over the sorted lines 'relative file name<TAB>sha256 of the file' of {}"

T = TypeVar("T")


# --- data by name, content hash and count ---------------------------------------------------------------------


def content_sha256(files: Iterable[tuple[str, Path]]) -> str:
    """The content hash of a data set from its (relative name, path) files; see the module's docstring."""
    lines = []
    for name, path in sorted(files):
        lines.append(f"{name}\t{file_sha256(path) if path.is_file() else 'missing'}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def relative_files(root: Path, paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(name relative to `root`, path) for files inside `root`; a file elsewhere is named by its last part."""
    root = Path(os.path.abspath(root))
    named = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        name = absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else absolute.name
        named.append((name, path))
    return named


def data_identity(folder: Path, files: list[tuple[str, Path]], what: str) -> dict[str, Any]:
    """{"name", "sha256", "files", "sha256_of"} of a data set: the folder's (or video's) name, never its path."""
    return {
        "name": Path(os.path.abspath(folder)).name,
        "sha256": content_sha256(files),
        "files": len(files),
        "sha256_of": HASH_RECIPE.format(what),
    }


def data_name(data: Any) -> str:
    """A data set's name from a card's `data` field: an identity (new cards) or a path (cards of older versions)."""
    if isinstance(data, dict):
        return str(data.get("name", "?"))
    return Path(str(data)).name if data else "?"


# --- paths and text without the machine's paths ---------------------------------------------------------------


def portable_path(path: str | Path) -> str:
    """`path` as a card may record it: $SALIENCY_DATA/REST under the data folder, relative to the project (runs/...,
    assets/...) inside it, else .../LAST (its last part only). Relative paths without '..' are kept as given."""
    text = str(path)
    if not text:
        return text
    given = Path(text).expanduser()
    if not given.is_absolute() and ".." not in given.parts:
        return given.as_posix()
    absolute = Path(os.path.abspath(given))
    # not relative to the working folder: run from / or a home folder, that would keep the machine's path
    for root, prefix in ((data_root(), DATA_VARIABLE), (PROJECT_ROOT, "")):
        inside = _relative(absolute, root)
        if inside is not None:
            return f"{prefix}/{inside}" if prefix and inside != "." else (prefix or inside)
    return f".../{absolute.name}"  # where it was on that machine says nothing here: its beginning is left out


def _relative(path: Path, root: Path) -> str | None:
    for candidate in {Path(os.path.abspath(root)), Path(root).resolve()}:
        for form in {path, path.resolve()}:
            if form.is_relative_to(candidate):
                return form.relative_to(candidate).as_posix()
    return None


# An absolute path inside free text: POSIX (/a/b, not the '/' in "images/s" or "$SALIENCY_DATA/x"), a home path
# (~/a) or a Windows one (C:\a); it ends at white space, a quote or a closing bracket.
_ABSOLUTE = re.compile(r"""(?<![\w.$~/:-])(?:/|~/|[A-Za-z]:[\\/])[^\s'"(),;\]}]+""")


def portable_text(text: str) -> str:
    """`text` with every absolute path in it replaced by its portable form."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        stripped = token.rstrip(".:")  # the end of a sentence is not part of the path
        return portable_path(stripped) + token[len(stripped) :]

    return _ABSOLUTE.sub(replace, text)


def portable_command(prog: str, argv: list[str]) -> str:
    """The command line `prog ARGV` as a card records it: every path argument (also --option=PATH) portable."""

    def argument(text: str) -> str:
        option, equals, value = text.partition("=")
        if equals and option.startswith("--"):
            return f"{option}={argument(value)}"
        looks_like_path = Path(text).is_absolute() or text.startswith("~") or ".." in Path(text).parts
        return portable_path(text) if looks_like_path else text

    def quoted(text: str) -> str:  # $SALIENCY_DATA stays outside the quotes, so that a shell expands it
        if text.startswith(f"{DATA_VARIABLE}/"):
            return f"{DATA_VARIABLE}/{shlex.quote(text[len(DATA_VARIABLE) + 1 :])}"
        return shlex.quote(text)

    return " ".join([prog, *(quoted(argument(text)) for text in argv)])


def portable(value: T) -> T:
    """A card section (dicts, lists, strings, numbers) with `portable_text` applied to every string in it."""
    if isinstance(value, str):
        return portable_text(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(portable(item) for item in value)
    return value
