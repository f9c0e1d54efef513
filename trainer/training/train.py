"""`python -m trainer train`: train a masking model against a frozen black box (section 4.1 of the paper).

One step (trainer.training.step): random resized crops of in-memory images (on the device) -> masks for the true class,
or with probability `fake_probability` a wrong one -> Phi(X, M) and Phi(X, 1 - M) through the black box -> the objective
(trainer.objective) -> Adam on the decoder, the feature filter and the class embeddings (the encoder is frozen).

This module checks the command line and sets the run up; trainer.training.loop trains, trainer.training.result writes
the model files. Arguments are checked before a model or data are loaded and before the run folder is made (exit status
2, one line; trainer.cli). Several processes (torchrun) split each step's global batch (trainer.training.distributed).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import SaliencyError
from engine.modelfiles.card import read_card
from engine.modelfiles.modelfile import load_model
from engine.models.blackbox import BlackBox, create_blackbox, list_blackboxes
from engine.models.encoders import create_encoder, list_encoders
from engine.models.masker import Masker, MaskerConfig
from trainer.cli import (
    UsageError,
    argument_checks,
    check_device,
    existing_folder,
    model_card,
    output_folder,
    run_command,
)
from trainer.data.boxes import EvalDataset
from trainer.data.images import find_source, load_training_set
from trainer.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from trainer.training.config import CONFIG_NAME, TrainConfig, build_parser, config_from_args
from trainer.training.distributed import init_distributed, pick_device, shut_down, wait_for_all, wrap_for_processes
from trainer.training.loop import Run, RunState, TrainingLoop
from trainer.training.result import finish
from trainer.training.step import MaskerStep
from trainer.training.validation import open_validation

PROG = "python -m trainer train"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    interrupted = "interrupted; the last checkpoint is kept: continue with --resume"
    try:
        return run_command(PROG, lambda: train(argv, started), interrupted)
    finally:
        shut_down()


def train(argv: list[str], started: float) -> int:
    plan = plan_run(build_parser().parse_args(argv))
    run, state = set_up(plan)
    loop = TrainingLoop(run, state, started)
    loop.train()
    wait_for_all(run.ranks)
    if run.ranks.main:
        finish(loop, argv)
    wait_for_all(run.ranks)
    return 0


def set_up(plan: RunPlan) -> tuple[Run, RunState]:
    """This process and its device, the models, the data, the optimizer and where the run starts from; the run
    folder is made last, when nothing is left that could refuse the arguments."""
    config = plan.config
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    ranks = init_distributed(config.device)
    device = pick_device(config.device, ranks)
    amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    log = print if ranks.main else (lambda *args, **kwargs: None)

    with argument_checks("--blackbox"):  # a package.module:factory is imported only now
        blackbox = create_blackbox(config.blackbox).to(device)
    # what needs the black box's classes: the data's labels and the --init model's shape (still before any data)
    with argument_checks("--data"):
        source = find_source(Path(config.data), blackbox.classes)
    if plan.init_card is not None and plan.checkpoint is None:
        check_init_architecture(config, plan.init_card, len(blackbox.classes))

    torch.manual_seed(config.seed)  # the same decoder initialisation in every process
    masker = build_masker(config, blackbox).to(device)
    if amp:  # bf16 kernels (tensor cores, AMX) want channels-last tensors: 1.5x on the black box on a 2-core Xeon
        blackbox.to(memory_format=torch.channels_last)
        masker.to(memory_format=torch.channels_last)
    progress = config.progress and ranks.main
    training_set = load_training_set(
        Path(config.data), blackbox, device, config.short_side, config.workers, config.video_every, progress, source
    )
    described = training_set.description
    log(
        f"training data: {described['images']} images of {described['classes']} classes from {config.data} "
        f"({described['kind']}, content sha256 {described['sha256'][:12]})"
    )
    validation = plan.validation if ranks.main else None
    if validation is not None:
        shown = min(config.val_limit or len(validation), len(validation))
        log(f"validation: the first {shown} images of {config.val_data} every {config.val_every} steps")

    optimizer = torch.optim.Adam([p for p in masker.parameters() if p.requires_grad], lr=config.lr)
    state = starting_state(plan, masker, optimizer, blackbox)
    if plan.checkpoint is not None:
        log(f"resuming {plan.out} at step {state.step} ({state.images_seen} images seen)")
    elif config.init:
        log(f"starting from the weights of {config.init}")
    if ranks.main:
        plan.out.mkdir(parents=True, exist_ok=True)
        config.save(plan.out)
    step_model = wrap_for_processes(MaskerStep(masker), ranks, device)
    run = Run(config, ranks, device, amp, blackbox, masker, step_model, optimizer, training_set, validation, plan.out)
    return run, state


def starting_state(plan: RunPlan, masker: Masker, optimizer: torch.optim.Optimizer, blackbox: BlackBox) -> RunState:
    """Where the run starts: the checkpoint's weights, optimizer and state (--resume), a model file's weights
    (--init), or the fresh masker at step 0."""
    if plan.checkpoint is not None:
        masker.load_trainable_state_dict(plan.checkpoint["masker"])
        optimizer.load_state_dict(plan.checkpoint["optimizer"])
        return RunState(**plan.checkpoint["run"])
    if plan.config.init:
        start_from(masker, Path(plan.config.init), blackbox)
    return RunState()


# --- the command line, checked before any work ------------------------------------------------------------------


@dataclass
class RunPlan:
    """A checked command line: the run's configuration and what it starts from."""

    config: TrainConfig
    out: Path
    checkpoint: dict[str, Any] | None  # the state to resume from (--resume)
    validation: EvalDataset | None  # the boxes set, unless --val-data none
    init_card: dict[str, Any] | None  # the card of the --init model file


def plan_run(args: argparse.Namespace) -> RunPlan:
    """The configuration of a new or resumed run, with every argument checked that can be checked without loading a
    model or data: ranges (the parser), the run folder, the data folders, the --init model file, the device."""
    out = output_folder("--out", getattr(args, "out", TrainConfig.out))
    saved, checkpoint = None, None
    if getattr(args, "resume", False):
        if not (out / CONFIG_NAME).is_file():
            raise UsageError(f"nothing to resume in {out}: no {CONFIG_NAME} (start a new run without --resume)")
        with argument_checks():
            saved, checkpoint = TrainConfig.load(out), load_checkpoint(out)
    elif (out / CHECKPOINT_NAME).exists():
        raise UsageError(f"{out} already holds a run: continue it with --resume, or pick another --out")
    try:
        config = config_from_args(args, saved)
    except ValueError as error:
        raise UsageError(str(error)) from error

    if config.blackbox not in list_blackboxes() and ":" not in config.blackbox:
        known = ", ".join(list_blackboxes())
        raise UsageError(f"--blackbox {config.blackbox}: unknown; known: {known}, or 'package.module:factory'")
    if config.encoder not in list_encoders():
        raise UsageError(f"--encoder {config.encoder}: unknown; known: {', '.join(list_encoders())}")
    check_device("--device", config.device)
    data = Path(config.data)
    if not data.exists():
        raise UsageError(f"--data {data} does not exist: pass a training folder or video (or set SALIENCY_DATA)")
    validation = None
    if config.val_data != "none":
        existing_folder("--val-data", config.val_data)
        with argument_checks("--val-data"):
            validation = open_validation(config.val_data)
    init_card = None
    if config.init:  # also when resuming: the card of the model the run started from goes into the new card
        # The file may explain another black box: its decoder reads the features of the encoder its card names, so
        # it fits any black box trained with that encoder (check_init_architecture compares the encoders).
        init_card = model_card("--init", config.init)
    return RunPlan(config, out, checkpoint, validation, init_card)


def check_init_architecture(config: TrainConfig, card: dict[str, Any], num_classes: int) -> None:
    """Fine-tuning copies the --init file's weights: its masker must have the architecture this run builds."""
    differences = architecture_differences(masker_config(config, num_classes), MaskerConfig.from_dict(card["masker"]))
    if differences:
        raise UsageError(
            f"--init {config.init} has another masker architecture ({differences}); give the file's options"
        )


def architecture_differences(ours: MaskerConfig, theirs: MaskerConfig) -> str:
    """What differs between two maskers' architectures (the embedding's initialisation does not count), or ""."""
    mine, other = ours.to_dict(), theirs.to_dict()
    differ = sorted(key for key in mine if key != "embedding_init" and mine[key] != other[key])
    return ", ".join(f"{key}: {other[key]} in the file, {mine[key]} here" for key in differ)


# --- the masker -------------------------------------------------------------------------------------------------


def masker_config(config: TrainConfig, num_classes: int) -> MaskerConfig:
    return MaskerConfig(
        encoder=config.encoder,
        num_classes=num_classes,
        input_size=config.image_size,
        upsampler_channels=config.upsampler_channels,
        embedding_init=config.embedding_init,
        embedding_scale=config.embedding_scale,
        embedding_offset=config.embedding_offset,
    )


def build_masker(config: TrainConfig, blackbox: BlackBox) -> Masker:
    return Masker(masker_config(config, len(blackbox.classes)), create_encoder(config.encoder, blackbox))


def start_from(masker: Masker, path: Path, blackbox: BlackBox) -> None:
    """Fine-tuning: copy a model file's weights into `masker`, whose architecture must be the file's. A file of
    another black box is loaded (and checked) against its own black box: only its decoder's weights are copied."""
    own = blackbox if read_card(path)["blackbox"]["name"] == blackbox.name else None
    source, _ = load_model(path, own)
    differences = architecture_differences(masker.config, source.config)
    if differences:
        raise SaliencyError(f"--init {path} has another masker architecture ({differences}); give the file's options")
    masker.load_trainable_state_dict(source.trainable_state_dict())
