"""The run's logs: CSV files that a resumed run continues, and the running means behind the progress bar."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

TERMS = ("loss", "tv", "area", "preserve", "destroy", "embedding")


class CsvLog:
    """Append rows to a CSV; on resume, rows written after the checkpoint's step (lost work) are dropped."""

    def __init__(self, path: Path, columns: list[str], keep_until_step: int | None = None) -> None:
        self.path = Path(path)
        self.columns = columns
        kept: list[dict] = []
        if keep_until_step is not None and self.path.exists():
            with open(self.path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= keep_until_step]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(row)


class RunningTerms:
    """Sums of the loss terms and of the mean masks on the device; read (one sync) only when logging."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(TERMS) + 4, device=self.device)  # terms, mask sums true/fake, counts true/fake
        self.steps = 0

    @torch.no_grad()
    def add(self, terms: dict[str, torch.Tensor], mask: torch.Tensor, is_real: torch.Tensor) -> None:
        per_image = mask.detach().float().flatten(1).mean(1)
        real = is_real.to(per_image.dtype)
        values = [terms[name].detach().float() for name in TERMS]
        values += [(per_image * real).sum(), (per_image * (1 - real)).sum(), real.sum(), (1 - real).sum()]
        self.sums += torch.stack(values)
        self.steps += 1

    def means(self) -> dict[str, float]:
        sums = self.sums.tolist()
        steps = max(self.steps, 1)
        result = {name: sums[index] / steps for index, name in enumerate(TERMS)}
        count_true, count_fake = sums[len(TERMS) + 2], sums[len(TERMS) + 3]
        result["mask_true"] = sums[len(TERMS)] / count_true if count_true else float("nan")
        result["mask_fake"] = sums[len(TERMS) + 1] / count_fake if count_fake else float("nan")
        return result


def curve_summary(rows: list[dict], points: int = 20) -> list[dict]:
    """About `points` evenly spaced rows of a training curve (the last one always included)."""
    if len(rows) <= points:
        return rows
    stride = len(rows) / points
    picked = [rows[int(index * stride)] for index in range(points)]
    return picked[:-1] + [rows[-1]]
