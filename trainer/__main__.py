"""`python -m trainer train|evaluate|grid|finalise ...` (also the `saliency-train` console script)."""

from __future__ import annotations

import importlib
import sys

PROG = "python -m trainer"
COMMANDS = {
    "train": ("trainer.train", "train a masking model against a black box"),
    "evaluate": ("trainer.evaluate", "localisation error, saliency metric and baselines, one table"),
    "grid": ("trainer.grid", "a PNG grid (input, mask, preserved, destroyed) of a model on dev images"),
    "finalise": ("trainer.finalise", "re-evaluate a trained model on a whole boxes set and ship it"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:<9} {help_text}" for name, (_, help_text) in COMMANDS.items()]
        print(f"usage: {PROG} COMMAND [options]   (COMMAND --help for its options)\n\ncommands:")
        print("\n".join(lines))
        return 0
    if argv[0] not in COMMANDS:
        print(
            f"{PROG}: error: {argv[0]!r} is not a command; the commands are {', '.join(COMMANDS)} "
            f"({PROG} --help says what each does)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
