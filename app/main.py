"""Entry point of the desktop app: `python run_app.py` / `saliency-app`."""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="saliency-app", description="Live saliency for a black-box classifier.")
    parser.add_argument("--source", help="webcam index (0, 1, ...) or a video / image file")
    parser.add_argument("--model", help="masking model file (default: the bundled model)")
    parser.add_argument("--backend", default="auto", help="auto|tensorrt|torch-cuda|onnxruntime|torch-cpu")
    parser.add_argument("--class", dest="target", default="auto", help="class name or index, or 'auto'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(argv)
    from PyQt6.QtWidgets import QApplication, QLabel

    application = QApplication(sys.argv[:1])
    label = QLabel("Live saliency explainer\n\nThe video player is not built yet (see issue 6).")
    label.setMinimumSize(480, 200)
    label.setWindowTitle("Live saliency explainer")
    label.show()
    return application.exec()


if __name__ == "__main__":
    sys.exit(main())
