"""What an exported ONNX file is (torch-free, so that the CPU runtime can tell whether a cached export still fits):
the ONNX opset, and a version bumped whenever the exported graphs change, so that caches are refreshed."""

from __future__ import annotations

from typing import Final

OPSET: Final = 17
EXPORT_VERSION: Final = "3"
