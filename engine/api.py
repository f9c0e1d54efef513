"""The public Python API of the engine (documented in README). Importing it is cheap: torch loads only when a
function that needs it is called (`load_masker`, `load_blackbox`, an Explainer on a torch backend).

    import engine
    model = engine.load_masker()                 # the bundled default model (or a path), as a torch module
    masks = model(images, classes)               # images (N, 3, H, W) in [0, 1], classes (N,) -> (N, 1, H, W)
    logits = model.blackbox(images)              # the black box it explains
    engine.list_blackboxes(); engine.load_blackbox("efficientnet_lite0")

    explainer = engine.Explainer(backend="auto")  # frames in, Explanation (numpy views + mask) out
    explanation = explainer.explain(frame_rgb_uint8, target="auto")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.contract import ASPECTS, AUTO, FILLS, VIEWS, ClassInfo, Evidence, Explanation
from engine.explainer import Explainer, backend_availability
from engine.runtime.framing import full_resolution
from engine.runtime.live import EvidenceStream
from engine.runtime.stages import PreparedFrame

if TYPE_CHECKING:
    from engine.modelfiles.loading import SaliencyModel
    from engine.models.blackbox import BlackBox

__all__ = [
    "ASPECTS",
    "AUTO",
    "FILLS",
    "VIEWS",
    "backend_availability",
    "ClassInfo",
    "Evidence",
    "EvidenceStream",
    "Explanation",
    "Explainer",
    "PreparedFrame",
    "SaliencyModel",
    "full_resolution",
    "list_blackboxes",
    "load_blackbox",
    "load_masker",
]


def load_masker(path: str | Path | None = None, device: Any = "cpu") -> SaliencyModel:
    """A model file (None: the bundled default) as a SaliencyModel (torch) in eval mode on `device`."""
    from engine.modelfiles.loading import load_masker as load

    return load(path, device)


def list_blackboxes() -> list[str]:
    from engine.models.blackbox import list_blackboxes as names

    return names()


def load_blackbox(name: str = "efficientnet_lite0") -> BlackBox:
    from engine.models.blackbox import create_blackbox

    return create_blackbox(name)


def __getattr__(name: str) -> Any:
    if name == "SaliencyModel":  # a torch class: loaded when asked for
        from engine.modelfiles.loading import SaliencyModel

        return SaliencyModel
    raise AttributeError(f"module 'engine.api' has no attribute {name!r}")
