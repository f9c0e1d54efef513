"""The run's clock: training time across resumed processes, the time budget, and the learning rate it sets.

The learning rate warms up linearly, then (cosine schedule) falls to 10% by whichever comes first: the last step or
the end of the time budget. A budgeted run keeps a reserve for what comes after the last step (a final validation of
every image and the saves), grown as validations show how long they take.
"""

from __future__ import annotations

import math
import time

from trainer.training.config import TrainConfig


class Schedule:
    def __init__(self, config: TrainConfig, elapsed_before: float, started: float) -> None:
        """`elapsed_before`: training seconds of earlier processes of this run; `started`: time.monotonic() when
        this process started."""
        self.config = config
        self.elapsed_before = elapsed_before
        self.started = started
        self.budget_s = config.time_budget * 60 if config.time_budget > 0 else math.inf
        self.reserve_s = 0.05 * self.budget_s if self.budgeted else 0.0

    @property
    def budgeted(self) -> bool:
        return math.isfinite(self.budget_s)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def progress(self, step: int) -> float:
        """How far the run is, 0..1, by steps or by time, whichever is further."""
        by_steps = step / max(self.config.steps, 1)
        by_time = self.elapsed() / max(self.budget_s - self.reserve_s, 1e-9)
        return max(by_steps, by_time)

    def lr(self, step: int) -> float:
        """The learning rate for step `step` (0-based)."""
        config = self.config
        lr = config.lr * min(1.0, (step + 1) / max(config.warmup_steps, 1))
        if config.lr_schedule == "cosine":
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(self.progress(step), 1.0)))
        return lr

    def out_of_time(self) -> bool:
        return self.budgeted and self.elapsed() + self.reserve_s >= self.budget_s

    def reserve_for_final_validation(self, validation_seconds: float, share: float) -> None:
        """Keep time to validate every image at the end (`share`: all images / the images just validated)."""
        if self.budgeted:
            self.reserve_s = max(self.reserve_s, 20.0 + 1.5 * validation_seconds * share)
