"""Make the installed `tensorrt-stubs` usable by mypy: `python scripts/tensorrt_stubs.py DIR`, then MYPYPATH=DIR.

The tensorrt-stubs wheel installs `tensorrt/__init__.pyi` and `tensorrt_bindings/*.pyi` without a `py.typed`
marker or a `-stubs` package name, so mypy never finds them (every TensorRT name silently becomes Any), and a few
generated signatures are not valid Python (a parameter named `in`; a parameter without a default after ones with
defaults), and the module-level alias `bool: DataType` shadows the builtin in every `-> bool`. This copies the
stubs into DIR with those repaired (and the stubs' own remaining errors silenced), so that `mypy engine`
really checks the TensorRT backend against the TensorRT API.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

_KEYWORD_PARAMETER = re.compile(r"(?<=[(,] )in(?=: )")  # `def f(self, in: X, out: Y)` -> `in_: X`
_MISSING_DEFAULT = re.compile(r"(=[^,()]*, \w+: \w+)\)")  # `(a: A = None, axis: int)` -> `axis: int = ...)`
_BOOL = re.compile(r"\bbool\b")
_HEADER = (
    "# mypy: ignore-errors\n# Repaired by scripts/tensorrt_stubs.py from the tensorrt-stubs wheel.\nimport builtins\n"
)


def repair(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("def "):
            line = _KEYWORD_PARAMETER.sub("in_", line)
            line = _MISSING_DEFAULT.sub(r"\1 = ...)", line)
        if not line.startswith(("__all__", "bool:", "from ", "import ")):
            line = _BOOL.sub("builtins.bool", line)
        lines.append(line)
    return _HEADER + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    target = Path(argv[0])
    try:
        files = distribution("tensorrt-stubs").files or []
    except PackageNotFoundError:
        print("tensorrt-stubs is not installed: pip install tensorrt-stubs", file=sys.stderr)
        return 1
    stubs = [file for file in files if file.name.endswith(".pyi")]
    for file in stubs:
        destination = target / str(file)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(repair(Path(str(file.locate())).read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{len(stubs)} TensorRT stub files -> {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
