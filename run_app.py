"""Thin launcher: `python run_app.py [--source 0|FILE] [--model PATH] [--backend NAME] [--class NAME]
[--benchmark-frames N]` (see --help)."""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
