"""Class lists of the black boxes, available offline.

The 1000 ImageNet-1k classes ship with the package (`engine/data/imagenet_classes.tsv`: index, wnid, synonyms),
in the order of every standard ImageNet head (sorted wnids).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.contract import AUTO, ClassInfo
from engine.errors import UnknownClassError

_IMAGENET_TSV = Path(__file__).parent / "data" / "imagenet_classes.tsv"


__all__ = ["ClassInfo", "generic_classes", "imagenet_classes", "resolve_class", "resolve_target"]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ClassInfo, ...]:
    with open(_IMAGENET_TSV, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return tuple(ClassInfo(int(row["index"]), row["wnid"], row["names"]) for row in rows)


def generic_classes(count: int) -> tuple[ClassInfo, ...]:
    """Class list for a user model without names: 'class 0', 'class 1', ..."""
    return tuple(ClassInfo(index, f"class{index}", f"class {index}") for index in range(count))


def resolve_class(target: str | int, classes: tuple[ClassInfo, ...]) -> int:
    """A class index from an index, a wnid, or a name (exact synonym first, then a unique substring)."""
    if isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit()):
        index = int(target)
        if not 0 <= index < len(classes):
            raise UnknownClassError(f"class index {index} is outside 0..{len(classes) - 1} of this black box")
        return index
    query = target.strip().lower()
    for info in classes:
        if query == info.wnid.lower() or query in (name.strip().lower() for name in info.names.split(",")):
            return info.index
    matches = [info for info in classes if query in info.names.lower()]
    if len(matches) == 1:
        return matches[0].index
    if not matches:
        raise UnknownClassError(f"no class named {target!r}; try part of a name, e.g. 'tabby' or 'espresso'")
    shown = "; ".join(f"{m.index}: {m.display_name}" for m in matches[:8])
    raise UnknownClassError(f"{target!r} matches {len(matches)} classes ({shown}...); be more specific")


def resolve_target(target: int | str, classes: tuple[ClassInfo, ...]) -> int:
    """A class index, AUTO, "auto", or a class name / wnid -> a class index or AUTO."""
    if isinstance(target, str) and target.strip().lower() == "auto":
        return AUTO
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if int(target) == AUTO:
            return AUTO
        if not 0 <= int(target) < len(classes):
            raise UnknownClassError(f"class index {int(target)} is outside 0..{len(classes) - 1} of this black box")
        return int(target)
    if isinstance(target, str):
        return resolve_class(target, classes)
    raise UnknownClassError(f"a target is a class index, a class name or 'auto', not {target!r}")
