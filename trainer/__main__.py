"""`python -m trainer COMMAND ...` (also the `saliency-train` console script): the commands are in COMMANDS."""

from __future__ import annotations

import importlib
import sys

from engine.errors import missing_extra

PROG = "python -m trainer"
COMMANDS = {
    "train": ("trainer.training.train", "train a masking model against a black box"),
    "evaluate": ("trainer.evaluation.evaluate", "localisation error, saliency metric and baselines, one table"),
    "grid": ("trainer.evaluation.grid", "a PNG grid (input, mask, preserved, destroyed) of a model on dev images"),
    "finalise": ("trainer.training.finalise", "re-evaluate a trained model on a whole boxes set and ship it"),
    "saliency-study": (
        "trainer.studies.saliency_study",
        "what the saliency metric rewards: thresholds, box sizes, examples",
    ),
    "gate": ("trainer.studies.gate", "the black box's gate for the masking model: what each threshold costs and buys"),
    "weak-classes": (
        "trainer.studies.weak_classes",
        "masks for classes the black box gives < 1%, on dev images and videos",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:<15} {help_text}" for name, (_, help_text) in COMMANDS.items()]
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
    try:
        module = importlib.import_module(COMMANDS[argv[0]][0])
    except ModuleNotFoundError as error:  # a plain install: the trainer is the training extra's
        extra = missing_extra(error)
        if extra is None:
            raise
        print(f"{PROG}: error: `{argv[0]}` {extra}", file=sys.stderr)
        return 1
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
