"""`python -m trainer train`: train a masking model against a frozen black box (section 4.1 of the paper).

One step: random resized crops of in-memory images (on the device) -> masks for the true class, or with
probability `fake_probability` a wrong one -> Phi(X, M) and Phi(X, 1 - M) through the black box -> the objective
(trainer.objective) -> Adam on the decoder, the feature filter and the class embeddings (the encoder is frozen).

Every random draw of step s comes from generators seeded by (seed, s, rank), so a resumed run repeats exactly what
the killed one would have done. Several processes (torchrun) split each step's global batch (DDP).
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from engine.errors import SaliencyError
from engine.modelfile import load_model, read_card, save_model
from engine.models.blackbox import BlackBox, create_blackbox
from engine.models.encoders import create_encoder
from engine.models.masker import Masker, MaskerConfig
from trainer.boxes import EvalDataset
from trainer.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from trainer.config import CONFIG_NAME, TrainConfig, build_parser, config_from_args
from trainer.data import BatchAugmenter, TrainingSet, load_training_set
from trainer.evidence import random_alternative, remove_evidence
from trainer.objective import objective
from trainer.runlog import TERMS, CsvLog, RunningTerms, curve_summary
from trainer.validation import (
    evaluation_command,
    held_out,
    open_validation,
    selection_fingerprint,
    validate,
)

TRAIN_COLUMNS = ["step", "images_seen", "elapsed_s", "lr", *TERMS, "mask_true", "mask_fake", "images_per_s"]
VAL_COLUMNS = [
    "step",
    "images_seen",
    "le_paper",
    "le_mean",
    "saliency",
    "empty_masks",
    "mask_true",
    "mask_fake",
    "seconds",
]


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class RunState:
    """What a checkpoint carries besides weights and optimizer."""

    step: int = 0
    images_seen: int = 0
    elapsed_s: float = 0.0  # training wall time of earlier (killed or finished) processes of this run
    best: dict | None = None  # {"step", "le_paper", "sm_paper"}
    validations: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    stopped_by: str = ""


class MaskerStep(nn.Module):
    """The masker's forward_aux as `forward`, so that DDP sees (and synchronises) the call."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def forward(self, images: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.masker.forward_aux(images, classes)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    try:
        return train(args, argv, started)
    except SaliencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the last checkpoint is kept: continue with --resume", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def train(args, argv: list[str], started: float) -> int:
    out = Path(getattr(args, "out", TrainConfig.out))
    resume = getattr(args, "resume", False)
    saved, checkpoint = None, None
    if resume:
        if not (out / CONFIG_NAME).is_file():
            raise CheckpointError(f"nothing to resume in {out}: no {CONFIG_NAME}")
        saved, checkpoint = TrainConfig.load(out), load_checkpoint(out)
    elif (out / CHECKPOINT_NAME).exists():
        raise CheckpointError(f"{out} already holds a run: continue it with --resume, or pick another --out")
    try:
        config = config_from_args(args, saved)
    except ValueError as error:
        raise SaliencyError(str(error)) from error

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    ranks = init_distributed(config.device)
    device = pick_device(config.device, ranks)
    amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    log = print if ranks.main else (lambda *a, **k: None)

    blackbox = create_blackbox(config.blackbox).to(device)
    torch.manual_seed(config.seed)  # the same decoder initialisation in every process
    masker = build_masker(config, blackbox).to(device)
    if amp:  # bf16 kernels (tensor cores, AMX) want channels-last tensors: 1.5x on the black box on a 2-core Xeon
        blackbox.to(memory_format=torch.channels_last)
        masker.to(memory_format=torch.channels_last)
    training_set = load_training_set(
        Path(config.data),
        blackbox,
        device,
        config.short_side,
        config.workers,
        config.video_every,
        progress=config.progress and ranks.main,
    )
    log(f"training data: {training_set.description}")
    validation = None
    if ranks.main and config.val_data != "none":
        validation = open_validation(config.val_data)
        log(
            f"validation: the first {min(config.val_limit or len(validation), len(validation))} images of "
            f"{config.val_data} every {config.val_every} steps"
        )

    trainable = [p for p in masker.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    state = RunState()
    if checkpoint is not None:
        masker.load_trainable_state_dict(checkpoint["masker"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = RunState(**checkpoint["run"])
        log(f"resuming {out} at step {state.step} ({state.images_seen} images seen)")
    elif config.init:
        start_from(masker, Path(config.init), blackbox)
        log(f"starting from the weights of {config.init}")
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
    step_model: nn.Module = MaskerStep(masker)
    if ranks.world > 1:
        step_model = nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
        )

    loop = TrainingLoop(
        config,
        ranks,
        device,
        amp,
        blackbox,
        masker,
        step_model,
        optimizer,
        training_set,
        validation,
        out,
        state,
        started,
    )
    loop.run()
    if ranks.world > 1:
        dist.barrier()
    if ranks.main:
        finish(config, blackbox, masker, training_set, loop, argv, device, amp)
    if ranks.world > 1:
        dist.barrier()
    return 0


def init_distributed(device_option: str) -> Distributed:
    """torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    ranks = Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_option != "cpu" and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return ranks


def pick_device(option: str, ranks: Distributed) -> torch.device:
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SaliencyError("--device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu")
        if option == "cuda":
            option = f"cuda:{ranks.local_rank}"
        torch.cuda.set_device(torch.device(option))
    elif option != "cpu":
        raise SaliencyError(f"--device must be auto, cpu, cuda or cuda:N, not {option!r}")
    return torch.device(option)


def build_masker(config: TrainConfig, blackbox: BlackBox) -> Masker:
    masker_config = MaskerConfig(
        encoder=config.encoder,
        num_classes=len(blackbox.classes),
        input_size=config.image_size,
        upsampler_channels=config.upsampler_channels,
        embedding_init=config.embedding_init,
        embedding_scale=config.embedding_scale,
        embedding_offset=config.embedding_offset,
    )
    return Masker(masker_config, create_encoder(config.encoder, blackbox))


def start_from(masker: Masker, path: Path, blackbox: BlackBox) -> None:
    """Fine-tuning: copy a model file's weights into `masker`, whose architecture must be the file's."""
    source, _ = load_model(path, blackbox)
    ours, theirs = masker.config.to_dict(), source.config.to_dict()
    differ = sorted(key for key in ours if key != "embedding_init" and ours[key] != theirs[key])
    if differ:
        details = ", ".join(f"{key}: {theirs[key]} in the file, {ours[key]} here" for key in differ)
        raise SaliencyError(f"--init {path} has another masker architecture ({details}); give the file's options")
    masker.load_trainable_state_dict(source.trainable_state_dict())


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


def step_terms(
    config: TrainConfig,
    step: int,
    ranks: Distributed,
    device: torch.device,
    amp: bool,
    augmenter: BatchAugmenter,
    labels: torch.Tensor,
    step_model: nn.Module,
    blackbox: BlackBox,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The objective's terms on step `step`'s batch (the same batch and draws whenever it is computed)."""
    cpu_random, device_random = step_generators(config.seed, step, ranks.rank, device)
    indices = batch_indices(config.seed, step, len(augmenter), config.batch, ranks)
    images = augmenter(indices, cpu_random)  # (B, 3, S, S) on the device
    targets = labels[indices.to(device)]
    num_classes = len(blackbox.classes)
    is_real = (torch.rand(config.batch, generator=cpu_random) >= config.objective.fake_probability).to(device)
    wrong = (targets + torch.randint(1, num_classes, (config.batch,), generator=cpu_random).to(device)) % num_classes
    classes = torch.where(is_real, targets, wrong)

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        outputs = step_model(images, classes)
        mask = outputs["mask"].float()
        real_images, real_mask = images[is_real], mask[is_real]
        evidence = dict(
            blur_probability=config.blur_probability,
            sigma_at_224=config.blur_sigma,
            noise_std=config.noise_std,
            generator=device_random,
        )
        preserved = remove_evidence(real_images, real_mask, random_alternative(real_images, **evidence))
        destroyed = remove_evidence(real_images, 1 - real_mask, random_alternative(real_images, **evidence))
        logits = blackbox(torch.cat([preserved, destroyed])).float()  # (2R, K)
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
    return terms, mask, is_real


class TrainingLoop:
    def __init__(
        self,
        config: TrainConfig,
        ranks: Distributed,
        device: torch.device,
        amp: bool,
        blackbox: BlackBox,
        masker: Masker,
        step_model: nn.Module,
        optimizer: torch.optim.Optimizer,
        training_set: TrainingSet,
        validation: EvalDataset | None,
        out: Path,
        state: RunState,
        started: float,
    ) -> None:
        self.config, self.ranks, self.device, self.amp = config, ranks, device, amp
        self.blackbox, self.masker, self.step_model, self.optimizer = blackbox, masker, step_model, optimizer
        self.validation, self.out, self.state, self.started = validation, out, state, started
        self.labels = training_set.labels.to(device)
        self.augmenter = BatchAugmenter(
            training_set.images, device, config.image_size, (config.crop_scale_min, 1.0), flip=config.flip
        )
        self.budget_s = config.time_budget * 60 if config.time_budget > 0 else math.inf
        self.reserve_s = 0.05 * self.budget_s if math.isfinite(self.budget_s) else 0.0
        self.process_elapsed_at_start = state.elapsed_s
        resumed_at = state.step if state.step > 0 else None
        if ranks.main:
            self.train_log = CsvLog(out / "train.csv", TRAIN_COLUMNS, resumed_at)
            self.val_log = CsvLog(out / "val.csv", VAL_COLUMNS, resumed_at)

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> None:
        config, state = self.config, self.state
        running = RunningTerms(self.device)
        self.masker.train()
        bar = tqdm(
            total=config.steps,
            initial=state.step,
            disable=not (config.progress and self.ranks.main),
            unit="step",
            dynamic_ncols=True,
        )
        window_start, window_images = time.monotonic(), 0
        try:
            while True:
                stop = self.stop_reason()
                if stop:
                    state.stopped_by = stop
                    break
                lr = self.set_lr()
                terms, mask, is_real = self.train_step()
                running.add(terms, mask, is_real)
                state.step += 1
                images = config.batch * self.ranks.world
                state.images_seen += images
                window_images += images
                bar.update(1)
                if state.step % config.log_every == 0 or state.step == config.steps:
                    seconds = time.monotonic() - window_start
                    row = self.log_row(running.means(), lr, window_images / max(seconds, 1e-9))
                    bar.set_postfix_str(_postfix(row), refresh=False)
                    if not config.progress and self.ranks.main:  # logs without a bar (batch jobs): one line each
                        print(
                            f"step {state.step}/{config.steps} {row['elapsed_s']:.0f}s lr {lr:.2e} {_postfix(row)}",
                            flush=True,
                        )
                    running.reset()
                    window_start, window_images = time.monotonic(), 0
                if config.val_every > 0 and state.step % config.val_every == 0:
                    self.validate_and_keep_best()
                if state.step % config.checkpoint_every == 0:
                    self.checkpoint()
        finally:  # on a kill or Ctrl-C the last periodic checkpoint stands (a half-done step is never saved)
            bar.close()
        if self.validation is not None and (not state.validations or state.validations[-1]["step"] != state.step):
            self.validate_and_keep_best()
        self.checkpoint()

    def train_step(self) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        terms, mask, is_real = step_terms(
            self.config,
            self.state.step,
            self.ranks,
            self.device,
            self.amp,
            self.augmenter,
            self.labels,
            self.step_model,
            self.blackbox,
        )
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        return terms, mask, is_real

    # --- schedule and stopping ---------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.process_elapsed_at_start + time.monotonic() - self.started

    def progress(self) -> float:
        by_steps = self.state.step / max(self.config.steps, 1)
        by_time = self.elapsed() / max(self.budget_s - self.reserve_s, 1e-9)
        return max(by_steps, by_time)

    def set_lr(self) -> float:
        config = self.config
        lr = config.lr * min(1.0, (self.state.step + 1) / max(config.warmup_steps, 1))
        if config.lr_schedule == "cosine":
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(self.progress(), 1.0)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def stop_reason(self) -> str:
        if self.state.step >= self.config.steps:
            return "steps"
        if not math.isfinite(self.budget_s):
            return ""
        out_of_time = self.elapsed() + self.reserve_s >= self.budget_s
        if self.ranks.world > 1:  # the main process's clock decides for everyone
            flag = torch.tensor([1.0 if out_of_time else 0.0], device=self.device)
            dist.broadcast(flag, src=0)
            out_of_time = bool(flag.item())
        return "time budget" if out_of_time else ""

    # --- logging, validation, checkpoints -----------------------------------------------------------------------

    def log_row(self, means: dict[str, float], lr: float, images_per_s: float) -> dict:
        row = {
            "step": self.state.step,
            "images_seen": self.state.images_seen,
            "elapsed_s": round(self.elapsed(), 1),
            "lr": lr,
            **{k: round(v, 5) for k, v in means.items()},
            "images_per_s": round(images_per_s, 1),
        }
        if self.ranks.main:
            self.train_log.write(row)
            self.state.curve.append(row)
        return row

    def validate_and_keep_best(self) -> None:
        if not self.ranks.main or self.validation is None:
            return
        limit = self.config.val_limit or None
        result = validate(self.masker, self.blackbox, self.validation, limit, self.device)
        self.masker.train()
        state = self.state
        entry = {
            "step": state.step,
            "images_seen": state.images_seen,
            "le_paper": result["loc_error_paper"],
            "le_mean": result["loc_error_mean"],
            "saliency": result["saliency_metric"],
            "empty_masks": result["empty_masks"],
            "mask_true": result["mean_mask"],
            "mask_fake": result["mask_fake"],
            "seconds": result["seconds"],
        }
        state.validations.append(entry)
        self.val_log.write(entry)
        better = state.best is None or (entry["le_paper"], entry["saliency"]) < (
            state.best["le_paper"],
            state.best["saliency"],
        )
        best_note = "  (best so far)" if better else ""
        tqdm.write(
            f"step {state.step}: localisation error {entry['le_paper']:.1f}% (mean protocol "
            f"{entry['le_mean']:.1f}%), saliency metric {entry['saliency']:.3f}, mean mask true "
            f"{entry['mask_true']:.3f} / fake {entry['mask_fake']:.3f}{best_note}"
        )
        if better:
            state.best = {
                "step": state.step,
                "le_paper": entry["le_paper"],
                "saliency": entry["saliency"],
                "summary": result,
            }
            save_model(
                self.out / "best.safetensors",
                self.masker,
                self.blackbox,
                training={"step": state.step, "images_seen": state.images_seen, "preset": self.config.objective.preset},
                evaluation={"data": self.config.val_data, "subset": f"first {result['images']} images", **result},
            )
        if math.isfinite(self.budget_s):  # keep time for the final evaluation of every image, and the saves
            share = len(self.validation) / max(result["images"], 1)
            self.reserve_s = max(self.reserve_s, 20.0 + 1.5 * result["seconds"] * share)

    def checkpoint(self) -> None:
        if not self.ranks.main:
            return
        self.state.elapsed_s = self.elapsed()
        save_checkpoint(
            self.out,
            {
                "masker": {k: v.detach().cpu() for k, v in self.masker.trainable_state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "run": self.state.__dict__,
            },
        )


def _postfix(row: dict) -> str:
    return (
        f"loss {row['loss']:.3f} tv {row['tv']:.3f} area {row['area']:.3f} pres {row['preserve']:.3f} "
        f"destr {row['destroy']:.3f} emb {row['embedding']:.3f} | mask true {row['mask_true']:.2f} "
        f"fake {row['mask_fake']:.2f} | {row['images_per_s']:.0f} img/s"
    )


# --- the result -----------------------------------------------------------------------------------------------------


def finish(
    config: TrainConfig,
    blackbox: BlackBox,
    masker: Masker,
    training_set: TrainingSet,
    loop: TrainingLoop,
    argv: list[str],
    device: torch.device,
    amp: bool,
) -> None:
    """model.safetensors = the best validated weights (or the last ones), evaluated on the whole boxes set."""
    out, state = loop.out, loop.state
    training = training_card(config, training_set, loop, argv, device, amp)
    save_model(out / "last.safetensors", masker, blackbox, training=training)
    best_path = out / "best.safetensors"
    if best_path.exists():
        masker.load_trainable_state_dict(load_file(str(best_path), device=str(device)))
    evaluation = {}
    if config.val_data != "none":
        print(
            f"final evaluation of the weights of step {state.best['step'] if state.best else state.step} "
            f"on {config.val_data}"
        )
        evaluation = evaluate_all(config, blackbox, masker, device, state.best, len(state.validations))
    path = save_model(out / "model.safetensors", masker, blackbox, training=training, evaluation=evaluation)
    if config.val_data != "none":
        from trainer.grid import save_grid

        save_grid(out / "grid.png", masker, blackbox, open_validation(config.val_data), device)
    print(
        f"wrote {path} (stopped by {state.stopped_by or 'interruption'} after {state.step} steps, "
        f"{state.images_seen} images)"
    )
    if evaluation:
        print(
            f"{evaluation['images']} images: localisation error {evaluation['loc_error_paper']:.1f}% (paper "
            f"protocol), {evaluation['loc_error_mean']:.1f}% (mean protocol); saliency metric "
            f"{evaluation['saliency_metric']:.3f}; mean mask true class {evaluation['mean_mask']:.3f}, "
            f"wrong class {evaluation['mask_fake']:.3f}"
        )


def evaluate_all(
    config: TrainConfig, blackbox: BlackBox, masker: Masker, device: torch.device, best: dict | None, validations: int
) -> dict:
    dataset = open_validation(config.val_data)
    result = validate(masker, blackbox, dataset, None, device)
    evaluation = {"data": config.val_data, "classes": "ground truth", **result}
    if best is not None:
        evaluation["selection"] = (
            f"the weights of step {best['step']}: best of {validations} validations (paper-protocol localisation "
            f"error) on the first {best['summary']['images']} of these images; held_out: the other images"
        )
        evaluation["held_out"] = held_out(result, best["summary"])
        evaluation["selection_images"] = selection_fingerprint(dataset, config.val_limit or None)
    evaluation["command"] = evaluation_command(config.val_data)
    return evaluation


def training_card(
    config: TrainConfig, training_set: TrainingSet, loop: TrainingLoop, argv: list[str], device: torch.device, amp: bool
) -> dict:
    state = loop.state
    return {
        "preset": config.objective.preset,
        "objective": config.objective.to_dict(),
        "evidence_removal": {
            "blur_probability": config.blur_probability,
            "blur_sigma_at_224": config.blur_sigma,
            "noise_std": config.noise_std,
        },
        "optimizer": {
            "name": "adam",
            "lr": config.lr,
            "schedule": config.lr_schedule,
            "warmup_steps": config.warmup_steps,
        },
        "batch_per_process": config.batch,
        "processes": loop.ranks.world,
        "augmentation": {
            "random_resized_crop_scale": [config.crop_scale_min, 1.0],
            "flip": config.flip,
            "size": config.image_size,
        },
        "data": training_set.description,
        "steps": state.step,
        "planned_steps": config.steps,
        "time_budget_minutes": config.time_budget or None,
        "stopped_by": state.stopped_by,
        "images_seen": state.images_seen,
        "seed": config.seed,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "amp": "bf16" if amp else "off",
        "wall_seconds": round(loop.elapsed(), 1),
        "best_step": state.best["step"] if state.best else None,
        "best_validation": state.best["summary"] if state.best else None,
        "curves": {"train": curve_summary(state.curve), "validation": state.validations},
        "command": "python -m trainer train " + shlex.join(argv),
        "config": config.to_dict(),
        "started_from": _parent(config.init) if config.init else None,
    }


def _parent(path: str) -> dict:
    """A fine-tuned model's history: the model file it started from and how that one was trained."""
    card = read_card(path)
    return {
        "model": path,
        "weights_sha256": card.get("weights_sha256"),
        "training": card.get("training"),
        "evaluation": card.get("evaluation"),
    }
