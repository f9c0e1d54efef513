"""The public Python API of the engine (documented in README).

import engine
model = engine.load_masker()                 # the bundled default model (or a path)
masks = model(images, classes)               # images (N, 3, H, W) in [0, 1], classes (N,) -> (N, 1, H, W)
logits = model.blackbox(images)              # the black box it explains
engine.list_blackboxes(); engine.load_blackbox("efficientnet_lite0")

explainer = engine.Explainer(backend="auto")  # frames in, Explanation (numpy views + mask) out
explanation = explainer.explain(frame_rgb_uint8, target="auto")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.backends import create_backend, select_backend
from engine.closing import Closing
from engine.composite import check_fill
from engine.contract import AUTO, FILLS, VIEWS, ClassInfo, Explanation
from engine.errors import ModelFileError
from engine.graphs import model_graphs
from engine.modelfile import load_model, read_card
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.blackbox import list_blackboxes as _list_blackboxes
from engine.models.masker import Masker
from engine.paths import DEFAULT_MODEL, default_model_path
from engine.pipeline import Pipeline, as_rgb_frame, resolve_target

__all__ = [
    "AUTO",
    "FILLS",
    "VIEWS",
    "ClassInfo",
    "Explanation",
    "Explainer",
    "SaliencyModel",
    "list_blackboxes",
    "load_blackbox",
    "load_masker",
]


class SaliencyModel(nn.Module):
    """A masking model together with the black box it explains."""

    def __init__(self, masker: Masker, blackbox: BlackBox, card: dict[str, Any]) -> None:
        super().__init__()
        self.masker = masker
        self.blackbox = blackbox
        self.card = card

    @property
    def classes(self) -> tuple:
        return self.blackbox.classes

    def forward(self, images: torch.Tensor, classes: torch.Tensor | list[int]) -> torch.Tensor:
        classes = torch.as_tensor(classes, dtype=torch.long, device=images.device).reshape(-1)
        if classes.numel() != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {classes.numel()} classes")
        if classes.min() < 0 or classes.max() >= len(self.blackbox.classes):
            raise ValueError(f"class indices must lie in 0..{len(self.blackbox.classes) - 1}")
        return self.masker(images, classes)


def load_masker(path: str | Path | None = None, device: str | torch.device = "cpu") -> SaliencyModel:
    """A model file (None: the bundled default) as a SaliencyModel in eval mode on `device`."""
    path = Path(path) if path is not None else default_model_path()
    if not path.exists() and path == DEFAULT_MODEL:
        raise ModelFileError(
            f"the bundled default model is missing ({path}); train one with `python -m trainer train` "
            f"or pass a model file"
        )
    blackbox_name = _card_blackbox(path)
    blackbox = create_blackbox(blackbox_name)
    masker, card = load_model(path, blackbox)
    return SaliencyModel(masker, blackbox, card).to(device).eval()


def list_blackboxes() -> list[str]:
    return _list_blackboxes()


def load_blackbox(name: str = "efficientnet_lite0") -> BlackBox:
    return create_blackbox(name)


def _card_blackbox(path: Path) -> str:
    return read_card(path)["blackbox"]["name"]


# --- Explainer: the interface the app (and the renderer) use (types: engine.contract) ---------------------


class Explainer(Closing):
    """Explains frames with one masking model on one backend. Building it is the only slow step.

        with Explainer("model.safetensors", backend="auto") as explainer:
            explanation = explainer.explain(frame_rgb_uint8, target="auto")

    Errors: ModelFileError, BlackBoxMismatchError, BackendUnavailableError (all SaliencyError).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        backend: str = "auto",
        *,
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
        batch_sizes: tuple[int, ...] = (1,),
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        model = load_masker(model_path)
        name = Path(model_path).stem if model_path is not None else default_model_path().stem
        self._setup(model.masker, model.blackbox, name, backend, fill, opacity, evidence, batch_sizes, backend_options)

    @classmethod
    def from_masker(
        cls,
        masker: Masker,
        blackbox: BlackBox,
        backend: str = "auto",
        *,
        name: str = "masker",
        fill: str = "blur",
        opacity: float = 0.5,
        evidence: bool = True,
        batch_sizes: tuple[int, ...] = (1,),
        backend_options: dict[str, Any] | None = None,
    ) -> Explainer:
        """An Explainer for a masker already in memory (e.g. an untrained one, for benchmarks)."""
        explainer = cls.__new__(cls)
        explainer._setup(masker, blackbox, name, backend, fill, opacity, evidence, batch_sizes, backend_options)
        return explainer

    def _setup(
        self,
        masker: Masker,
        blackbox: BlackBox,
        name: str,
        backend: str,
        fill: str,
        opacity: float,
        evidence: bool,
        batch_sizes: tuple[int, ...],
        backend_options: dict[str, Any] | None,
    ) -> None:
        self.fill = check_fill(fill)
        self.opacity = float(opacity)
        self.evidence = bool(evidence)
        self.backend_name, self.backend_reason = select_backend(backend)
        self.graphs = model_graphs(masker.cpu(), blackbox.cpu(), name=name)
        self.model_description = self.graphs.name
        self.classes = blackbox.classes
        self.backend = create_backend(
            self.backend_name, self.graphs, batch_sizes=batch_sizes, **(backend_options or {})
        )
        self.pipeline = Pipeline(self.backend, self.graphs, self.classes)
        self.pipeline.warm_up()

    def explain(
        self,
        frame: np.ndarray,
        target: int | str = "auto",
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
    ) -> Explanation:
        """One (H, W, 3) uint8 RGB frame (grey and RGBA are converted) -> Explanation."""
        return self.explain_batch([frame], [target], fill=fill, opacity=opacity, evidence=evidence)[0]

    def explain_batch(
        self,
        frames: list[np.ndarray],
        targets: list[int | str],
        *,
        fill: str | None = None,
        opacity: float | None = None,
        evidence: bool | None = None,
    ) -> list[Explanation]:
        """Same-sized frames in one batch (offline video); timings are per frame. Targets: class indices or AUTO
        (engine.contract's one encoding of "auto"), or text parsed here ("auto", a class name or wnid)."""

        rgb = [as_rgb_frame(frame) for frame in frames]
        indices = [AUTO if target == AUTO else resolve_target(target, self.classes) for target in targets]
        return self.pipeline.run(
            rgb,
            indices,
            fill=self.fill if fill is None else fill,
            opacity=self.opacity if opacity is None else float(opacity),
            evidence=self.evidence if evidence is None else bool(evidence),
        )

    def close(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
