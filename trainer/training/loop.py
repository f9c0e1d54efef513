"""The training loop: steps until --steps or the time budget, with logs, validation (keeping the best weights) and
checkpoints on the way. On a kill or Ctrl-C the last periodic checkpoint stands; a half-done step is never saved.

`Run` is what trainer.training.train sets up (models, optimizer, data, run folder); `RunState` is what a checkpoint
carries besides the weights and the optimizer, so that a resumed run goes on exactly where the killed one was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from engine.modelfiles.modelfile import save_model
from engine.models.blackbox import BlackBox
from engine.models.masker import Masker
from trainer.data.boxes import EvalDataset
from trainer.data.images import BatchAugmenter, TrainingSet
from trainer.data.provenance import portable
from trainer.training.checkpoint import save_checkpoint
from trainer.training.config import TrainConfig
from trainer.training.distributed import Distributed, main_process_decides
from trainer.training.runlog import TERMS, CsvLog, RunningTerms
from trainer.training.schedule import Schedule
from trainer.training.step import StepContext, StepOutput, step_terms
from trainer.training.validation import validate

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
class Run:
    """What a training run works with, as trainer.training.train set it up."""

    config: TrainConfig
    ranks: Distributed
    device: torch.device
    amp: bool  # bf16 autocast
    blackbox: BlackBox
    masker: Masker
    step_model: nn.Module  # the masker's training forward, in DDP when there are several processes
    optimizer: torch.optim.Optimizer
    training_set: TrainingSet
    validation: EvalDataset | None  # on the main process, unless --val-data none
    out: Path


@dataclass
class RunState:
    """What a checkpoint carries besides weights and optimizer."""

    step: int = 0
    images_seen: int = 0
    elapsed_s: float = 0.0  # training wall time of earlier (killed or finished) processes of this run
    best: dict | None = None  # {"step", "le_paper", "saliency", "summary"}
    validations: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    stopped_by: str = ""


class TrainingLoop:
    """The steps of one process, with its logs, validations and checkpoints (the main process writes the files)."""

    def __init__(self, run: Run, state: RunState, started: float) -> None:
        """`started`: time.monotonic() when this process started (its set-up counts as training time)."""
        self.run, self.state = run, state
        config = run.config
        self.schedule = Schedule(config, state.elapsed_s, started)
        augmenter = BatchAugmenter(
            run.training_set.images, run.device, config.image_size, (config.crop_scale_min, 1.0), flip=config.flip
        )
        labels = run.training_set.labels.to(run.device)
        self.steps = StepContext(
            config, run.ranks, run.device, run.amp, augmenter, labels, run.step_model, run.blackbox
        )
        self.validation_data = run.validation.identity() if run.validation is not None else None
        resumed_at = state.step if state.step > 0 else None
        if run.ranks.main:
            self.train_log = CsvLog(run.out / "train.csv", TRAIN_COLUMNS, resumed_at)
            self.val_log = CsvLog(run.out / "val.csv", VAL_COLUMNS, resumed_at)

    def train(self) -> None:
        """Train until a stop reason, then validate the last weights (unless just done) and checkpoint them."""
        run, config, state = self.run, self.run.config, self.state
        running = RunningTerms(run.device)
        run.masker.train()
        bar = tqdm(
            total=config.steps,
            initial=state.step,
            disable=not (config.progress and run.ranks.main),
            unit="step",
            dynamic_ncols=True,
        )
        window_start, window_images = time.monotonic(), 0
        try:
            while not (stop := self.stop_reason()):
                lr = self.schedule.lr(state.step)
                output = self.train_step(lr)
                running.add(*output)
                state.step += 1
                images = config.batch * run.ranks.world
                state.images_seen += images
                window_images += images
                bar.update(1)
                if state.step % config.log_every == 0 or state.step == config.steps:
                    images_per_s = window_images / max(time.monotonic() - window_start, 1e-9)
                    self.log(running.means(), lr, images_per_s, bar)
                    running.reset()
                    window_start, window_images = time.monotonic(), 0
                if config.val_every > 0 and state.step % config.val_every == 0:
                    self.validate_and_keep_best()
                if state.step % config.checkpoint_every == 0:
                    self.checkpoint()
            state.stopped_by = stop
        finally:
            bar.close()
        if run.validation is not None and (not state.validations or state.validations[-1]["step"] != state.step):
            self.validate_and_keep_best()
        self.checkpoint()

    def stop_reason(self) -> str:
        if self.state.step >= self.run.config.steps:
            return "steps"
        if not self.schedule.budgeted:
            return ""
        out_of_time = main_process_decides(self.schedule.out_of_time(), self.run.ranks, self.run.device)
        return "time budget" if out_of_time else ""

    def train_step(self, lr: float) -> StepOutput:
        optimizer = self.run.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        output = step_terms(self.steps, self.state.step)
        optimizer.zero_grad(set_to_none=True)
        output.terms["loss"].backward()
        optimizer.step()
        return output

    # --- what the run writes on the way -------------------------------------------------------------------------

    def log(self, means: dict[str, float], lr: float, images_per_s: float, bar: tqdm) -> None:
        """A train.csv row (and the training curve) on the main process; the progress bar's text, or a plain line
        per log row when there is no bar (batch jobs)."""
        run, state = self.run, self.state
        row = {
            "step": state.step,
            "images_seen": state.images_seen,
            "elapsed_s": round(self.schedule.elapsed(), 1),
            "lr": lr,
            **{key: round(value, 5) for key, value in means.items()},
            "images_per_s": round(images_per_s, 1),
        }
        if not run.ranks.main:
            return
        self.train_log.write(row)
        state.curve.append(row)
        bar.set_postfix_str(_postfix(row), refresh=False)
        if not run.config.progress:
            print(
                f"step {state.step}/{run.config.steps} {row['elapsed_s']:.0f}s lr {lr:.2e} {_postfix(row)}", flush=True
            )

    def validate_and_keep_best(self) -> None:
        """Validate on the first --val-limit images (main process); best.safetensors holds the best weights so far
        (lowest paper-protocol localisation error, then saliency metric)."""
        run, state = self.run, self.state
        if not run.ranks.main or run.validation is None:
            return
        result = validate(run.masker, run.blackbox, run.validation, run.config.val_limit or None, run.device)
        run.masker.train()
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
        tqdm.write(
            f"step {state.step}: localisation error {entry['le_paper']:.1f}% (mean protocol "
            f"{entry['le_mean']:.1f}%), saliency metric {entry['saliency']:.3f}, mean mask true "
            f"{entry['mask_true']:.3f} / fake {entry['mask_fake']:.3f}{'  (best so far)' if better else ''}"
        )
        if better:
            state.best = {"step": state.step, "le_paper": entry["le_paper"], "saliency": entry["saliency"]}
            state.best["summary"] = result
            self.save_best(result)
        share = len(run.validation) / max(result["images"], 1)
        self.schedule.reserve_for_final_validation(result["seconds"], share)

    def save_best(self, result: dict) -> None:
        run, state = self.run, self.state
        training = {"step": state.step, "images_seen": state.images_seen, "preset": run.config.objective.preset}
        evaluation = {"data": self.validation_data, "subset": f"first {result['images']} images", **result}
        save_model(
            run.out / "best.safetensors",
            run.masker,
            run.blackbox,
            training=portable(training),
            evaluation=portable(evaluation),
        )

    def checkpoint(self) -> None:
        run = self.run
        if not run.ranks.main:
            return
        self.state.elapsed_s = self.schedule.elapsed()
        trainable = run.masker.trainable_state_dict()
        save_checkpoint(
            run.out,
            {
                "masker": {key: value.detach().cpu() for key, value in trainable.items()},
                "optimizer": run.optimizer.state_dict(),
                "run": self.state.__dict__,
            },
        )


def _postfix(row: dict) -> str:
    return (
        f"loss {row['loss']:.3f} tv {row['tv']:.3f} area {row['area']:.3f} pres {row['preserve']:.3f} "
        f"destr {row['destroy']:.3f} emb {row['embedding']:.3f} | mask true {row['mask_true']:.2f} "
        f"fake {row['mask_fake']:.2f} | {row['images_per_s']:.0f} img/s"
    )
