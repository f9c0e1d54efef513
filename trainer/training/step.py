"""One training step's work up to the loss: its batch, its class selectors, evidence removal and the objective.

Every random draw of step s comes from generators seeded by (seed, s, rank), so the same step computes the same
batch, classes and alternatives whenever it runs: a resumed run repeats exactly what the killed one would have done,
and a test can score any masker on the batches of given steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from trainer.data.images import BatchAugmenter
from trainer.evidence import random_alternative, remove_evidence
from trainer.objective import objective
from trainer.training.config import TrainConfig
from trainer.training.distributed import Distributed


class MaskerStep(nn.Module):
    """The masker's forward_aux as `forward`, so that DDP sees (and synchronises) the call."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def forward(self, images: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.masker.forward_aux(images, classes)


@dataclass
class StepContext:
    """What every step works with: the run's configuration, this process, the data on its device, the models."""

    config: TrainConfig
    ranks: Distributed
    device: torch.device
    amp: bool  # bf16 autocast
    augmenter: BatchAugmenter
    labels: torch.Tensor  # (N,) the training images' classes, on the device
    step_model: nn.Module  # MaskerStep, in DDP when there are several processes
    blackbox: BlackBox


class StepOutput(NamedTuple):
    terms: dict[str, torch.Tensor]  # the weighted objective terms and their sum, "loss"
    mask: torch.Tensor  # (B, 1, S, S)
    is_real: torch.Tensor  # (B,) bool: False where the class selector was replaced by a wrong class


def step_generators(seed: int, step: int, rank: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(CPU generator, device generator) for one step of one process: a pure function of (seed, step, rank)."""
    base = (seed * 1_000_003 + step) * 1009 + rank
    cpu = torch.Generator().manual_seed(base)
    on_device = torch.Generator(device=device).manual_seed(base + 7) if device.type != "cpu" else cpu
    return cpu, on_device


def batch_indices(seed: int, step: int, count: int, batch: int, ranks: Distributed) -> torch.Tensor:
    """This process's share of step `step`'s global batch, from an endless sequence of seeded permutations."""
    global_batch = batch * ranks.world
    positions = torch.arange(batch) + step * global_batch + ranks.rank * batch
    epochs = positions // count
    indices = torch.empty(batch, dtype=torch.long)
    for epoch in epochs.unique().tolist():
        order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        chosen = epochs == epoch
        indices[chosen] = order[positions[chosen] % count]
    return indices


def select_classes(
    targets: torch.Tensor, num_classes: int, fake_probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class selectors, is_real): the true class, or with probability `fake_probability` a wrong one drawn uniformly
    from the other classes (the paper's fake labels: the mask must then be empty)."""
    batch = len(targets)
    is_real = (torch.rand(batch, generator=generator) >= fake_probability).to(targets.device)
    shift = torch.randint(1, num_classes, (batch,), generator=generator).to(targets.device)
    wrong = (targets + shift) % num_classes
    return torch.where(is_real, targets, wrong), is_real


HARD_NEGATIVE_BOUND = 0.01  # a hard negative gets less than this probability from the black box on the image


def hard_negatives(
    probabilities: torch.Tensor, targets: torch.Tensor, pool: int, generator: torch.Generator
) -> torch.Tensor:
    """Per image, a class drawn uniformly among the black box's top `pool` classes (rows of `probabilities` (N, K))
    that get less than HARD_NEGATIVE_BOUND and are not the target; -1 where there is none."""
    top = probabilities.topk(min(pool, probabilities.shape[1]), dim=1)
    allowed = (top.values < HARD_NEGATIVE_BOUND) & (top.indices != targets[:, None])
    scores = torch.rand(top.indices.shape, generator=generator).to(probabilities.device)
    scores = torch.where(allowed, scores, torch.full_like(scores, -1.0))
    best = scores.argmax(1, keepdim=True)
    chosen = top.indices.gather(1, best)[:, 0]
    return torch.where(allowed.any(1), chosen, torch.full_like(chosen, -1))


def with_hard_negatives(
    images: torch.Tensor,
    targets: torch.Tensor,
    classes: torch.Tensor,
    is_real: torch.Tensor,
    blackbox: nn.Module,
    share: float,
    pool: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """`classes` with a share `share` of the fake selectors replaced by hard negatives of their image (the black box
    runs on those images only, without gradient)."""
    hard = (~is_real).cpu() & (torch.rand(len(targets), generator=generator) < share)
    if not bool(hard.any()):
        return classes
    where = hard.to(classes.device)
    with torch.no_grad():
        probabilities = torch.softmax(blackbox(images[where]).float(), dim=1)
    drawn = hard_negatives(probabilities, targets[where], pool, generator)
    replaced = classes.clone()
    replaced[where] = torch.where(drawn >= 0, drawn, classes[where])
    return replaced


def step_terms(context: StepContext, step: int) -> StepOutput:
    """The objective's terms on step `step`'s batch (the same batch and draws whenever it is computed)."""
    config, device = context.config, context.device
    cpu_random, device_random = step_generators(config.seed, step, context.ranks.rank, device)
    indices = batch_indices(config.seed, step, len(context.augmenter), config.batch, context.ranks)
    images = context.augmenter(indices, cpu_random)  # (B, 3, S, S) on the device
    targets = context.labels[indices.to(device)]
    num_classes = len(context.blackbox.classes)
    objective_config = config.objective
    classes, is_real = select_classes(targets, num_classes, objective_config.fake_probability, cpu_random)
    if objective_config.hard_negative_share > 0:  # drawn after the paper's draws: a run without them is unchanged
        classes = with_hard_negatives(
            images,
            targets,
            classes,
            is_real,
            context.blackbox,
            objective_config.hard_negative_share,
            objective_config.hard_negative_pool,
            cpu_random,
        )

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=context.amp):
        outputs = context.step_model(images, classes)
        mask = outputs["mask"].float()
        real_images, real_mask = images[is_real], mask[is_real]  # fake selectors get the area term only

        def alternative() -> torch.Tensor:
            return random_alternative(
                real_images, config.blur_probability, config.blur_sigma, config.noise_std, device_random
            )

        preserved = remove_evidence(real_images, real_mask, alternative())
        destroyed = remove_evidence(real_images, 1 - real_mask, alternative())
        logits = context.blackbox(torch.cat([preserved, destroyed])).float()  # (2R, K)
    preserved_logits, destroyed_logits = logits.chunk(2) if len(logits) else (logits, logits)
    terms = objective(
        config.objective,
        mask,
        outputs["mask_low"],
        outputs["presence_logits"],
        preserved_logits,
        destroyed_logits,
        classes,
        is_real,
    )
    return StepOutput(terms, mask, is_real)
