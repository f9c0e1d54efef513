"""One interface for every inference backend (after Polygraphy's runners).

A backend runs the two graphs of a model (`engine.export.graphs`): `infer("saliency", {"image", "target"})` ->
{"mask_low", "logits"} and `infer("classifier", {"image"})` -> {"logits"}. Inputs and outputs are torch tensors on
`backend.device` (float32 images in [0, 1], int64 targets; float32 outputs), so a GPU pipeline never copies a frame
back to the host between stages. Each backend is a context manager; `close()` frees what it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from engine.closing import Closing
from engine.export.graphs import ModelGraphs

GRAPHS = ("saliency", "classifier")
DEFAULT_BATCH_SIZES = (1, 8)


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why (shown to the user by `auto` and by `engine info`)."""

    ok: bool
    reason: str


class Backend(Closing, ABC):
    """Runs a model's graphs on one device. Subclasses build everything slow in `__init__`."""

    name: str = ""
    device: torch.device = torch.device("cpu")

    def __init__(self, graphs: ModelGraphs, batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES) -> None:
        self.graphs = graphs
        self.batch_sizes = tuple(sorted(set(batch_sizes)))
        self.max_batch = max(self.batch_sizes + (3,))  # the evidence check runs preserved + destroyed (+ frame)

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Cheap check (imports and devices only), never raises."""

    @abstractmethod
    def infer(self, graph: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run `graph` on `feed` (tensors on self.device); float32 outputs on self.device."""

    def close(self) -> None:  # noqa: B027 (optional hook: CPU backends hold nothing to free)
        """Free device memory, sessions and engines (idempotent)."""

    def describe(self) -> str:
        return self.name


def check_graph(graph: str) -> None:
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; backends run {GRAPHS}")
