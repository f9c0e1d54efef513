"""The end of a run: last.safetensors (the last weights), model.safetensors (the best validated weights, or the last,
evaluated on every image of the validation set) and grid.png, with the card that says how the model was made.

Cards name data, folders and files without the machine's paths (trainer.data.provenance): the data by name, content hash
and count; the run folder, the model a run started from and the command line in portable form. The run folder's
config.json keeps the real paths: --resume needs them, and it is not shipped with a model.
"""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import load_file

from engine.modelfiles.modelfile import read_card, save_model
from trainer.data.provenance import portable, portable_command, portable_path
from trainer.evaluation.grid import save_grid
from trainer.training.loop import TrainingLoop
from trainer.training.runlog import curve_summary
from trainer.training.validation import evaluation_command, held_out, selection_fingerprint, validate


def finish(loop: TrainingLoop, argv: list[str]) -> None:
    """Write the run's model files and grid, and say what was written (main process only)."""
    run, state = loop.run, loop.state
    training = portable(training_card(loop, argv))
    save_model(run.out / "last.safetensors", run.masker, run.blackbox, training=training)
    best_path = run.out / "best.safetensors"
    if best_path.exists():
        run.masker.load_trainable_state_dict(load_file(str(best_path), device=str(run.device)))
    evaluation: dict[str, Any] = {}
    if run.validation is not None:
        chosen = state.best["step"] if state.best else state.step
        print(f"final evaluation of the weights of step {chosen} on {run.config.val_data}")
        evaluation = portable(final_evaluation(loop))
    path = save_model(run.out / "model.safetensors", run.masker, run.blackbox, training=training, evaluation=evaluation)
    if run.validation is not None:
        save_grid(run.out / "grid.png", run.masker, run.blackbox, run.validation, run.device)
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


def final_evaluation(loop: TrainingLoop) -> dict[str, Any]:
    """The chosen weights on every validation image; held-out numbers when validations chose among the first."""
    run, best = loop.run, loop.state.best
    assert run.validation is not None
    result = validate(run.masker, run.blackbox, run.validation, None, run.device)
    evaluation = {"data": loop.validation_data, "classes": "ground truth", **result}
    if best is not None:
        evaluation["selection"] = (
            f"the weights of step {best['step']}: best of {len(loop.state.validations)} validations (paper-protocol "
            f"localisation error) on the first {best['summary']['images']} of these images; held_out: the other images"
        )
        evaluation["held_out"] = held_out(result, best["summary"])
        evaluation["selection_images"] = selection_fingerprint(run.validation, run.config.val_limit or None)
    evaluation["command"] = evaluation_command(run.config.val_data)
    return evaluation


def training_card(loop: TrainingLoop, argv: list[str]) -> dict[str, Any]:
    """The card's `training` section: objective, optimisation, data, how far the run went, curves, the command."""
    run, state, config = loop.run, loop.state, loop.run.config
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
        "processes": run.ranks.world,
        "augmentation": {
            "random_resized_crop_scale": [config.crop_scale_min, 1.0],
            "flip": config.flip,
            "size": config.image_size,
        },
        "data": run.training_set.description,
        "steps": state.step,
        "planned_steps": config.steps,
        "time_budget_minutes": config.time_budget or None,
        "stopped_by": state.stopped_by,
        "images_seen": state.images_seen,
        "seed": config.seed,
        "device": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        "amp": "bf16" if run.amp else "off",
        "wall_seconds": round(loop.schedule.elapsed(), 1),
        "best_step": state.best["step"] if state.best else None,
        "best_validation": state.best["summary"] if state.best else None,
        "curves": {"train": curve_summary(state.curve), "validation": state.validations},
        "command": portable_command("python -m trainer train", argv),
        "config": config.to_dict(),
        "started_from": started_from(config.init) if config.init else None,
    }


def started_from(path: str) -> dict[str, Any]:
    """A fine-tuned model's history: the model file it started from and how that one was trained."""
    card = read_card(path)
    return {
        "model": portable_path(path),
        "weights_sha256": card.get("weights_sha256"),
        "blackbox": card.get("blackbox"),  # a fine-tune may move a masker to another black box of the same encoder
        "training": card.get("training"),
        "evaluation": card.get("evaluation"),
    }
