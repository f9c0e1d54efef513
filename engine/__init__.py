"""Runtime core: black boxes, masking models, model files, export, backends, the frame pipeline.

`import engine` is cheap (no torch): the API below is loaded on first use, so the app's window can appear
before the model loads.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = ("load_masker", "list_blackboxes", "load_blackbox", "Explainer")
_CONTRACT = ("AUTO", "ClassInfo", "Explanation", "FILLS", "VIEWS", "RENDER_VIEWS", "BACKEND_NAMES", "BACKEND_CHOICES")
__all__ = [*_API, *_CONTRACT]


def __getattr__(name: str) -> Any:
    if name in _CONTRACT:  # the app's vocabulary: no torch behind it
        return getattr(importlib.import_module("engine.contract"), name)
    if name in _API:
        # importlib: engine.api (torch, the models) is loaded here, on first use, never at `import engine`.
        api = importlib.import_module("engine.api")
        return getattr(api, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
