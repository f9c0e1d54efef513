"""Is requirements/ locked from this pyproject.toml? `make test` runs this first; `make lock` runs it with --stamp.

The lock files (requirements/*.txt, compiled by uv with hashes) are made from pyproject.toml's dependency lists and
requirements/*.in. `make lock` records a digest of each of those inputs in requirements/locked-from.json; this check
recomputes them and names, in one line, every input that changed since: a dependency added to pyproject.toml but not
locked would otherwise be missing from every fresh install, or a stale pin would contradict a new lower bound.

    python scripts/check_lock.py            # exit 1 with one line when the lock is out of date
    python scripts/check_lock.py --stamp    # record the inputs as locked (after `uv pip compile`)
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = "requirements/locked-from.json"


def lock_inputs(root: Path = ROOT) -> dict[str, str]:
    """Every input of the lock, by name -> sha256 of its normalised content."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    inputs: dict[str, object] = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
    }
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        inputs[f"optional-dependencies.{extra}"] = sorted(requirements)
    for path in sorted((root / "requirements").glob("*.in")):
        inputs[f"requirements/{path.name}"] = path.read_text()
    return {name: hashlib.sha256(json.dumps(value).encode()).hexdigest() for name, value in inputs.items()}


def main(argv: list[str], root: Path = ROOT) -> int:
    current = lock_inputs(root)
    if "--stamp" in argv:
        (root / STAMP).write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        return 0
    try:
        locked = json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        locked = {}
    changed = sorted(name for name in current.keys() | locked.keys() if current.get(name) != locked.get(name))
    if changed:
        print(
            f"check_lock: requirements/*.txt are out of date with pyproject.toml ({', '.join(changed)} changed since "
            "they were locked): run `make lock` and commit requirements/",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
