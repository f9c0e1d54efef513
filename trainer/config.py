"""The training run's configuration: one dataclass, filled in three layers and saved as JSON beside the run.

    TrainConfig defaults  <-  objective preset (--preset)  <-  options given on the command line

With --resume the saved config.json replaces the first two layers, and only the options in RESUMABLE may be given
again (more steps, another time budget, ...): anything else would silently make a different run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.paths import data_root
from trainer.objective import (
    AREA_FORMS,
    DESTROY_FORMS,
    PRESERVE_FORMS,
    PRESETS,
    TV_REDUCTIONS,
    ObjectiveConfig,
    preset,
)

RESUMABLE = {
    "out",
    "steps",
    "time_budget",
    "val_every",
    "checkpoint_every",
    "log_every",
    "workers",
    "threads",
    "device",
    "progress",
}
CONFIG_NAME = "config.json"


@dataclass
class TrainConfig:
    data: str = ""  # "" = $SALIENCY_DATA/imagenet-train
    val_data: str = ""  # "" = $SALIENCY_DATA/imagenet-val-dev; "none" = no validation
    val_limit: int = 200  # validate on the first N images (0 = all); the final evaluation uses all of them
    val_every: int = 500
    out: str = "runs/lite0-default"
    blackbox: str = "efficientnet_lite0"
    encoder: str = ""  # "" = the black box's own feature extractor
    upsampler_channels: tuple[int, int, int] = (128, 64, 32)
    embedding_init: str = "classifier"
    embedding_scale: float = 0.2
    embedding_offset: float = -2.0
    init: str = ""  # a model file whose weights the run starts from (fine-tuning); "" = a fresh masker
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    steps: int = 3000
    batch: int = 8  # per process
    lr: float = 3e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 50
    seed: int = 0
    workers: int = 4
    threads: int = 0  # torch CPU threads, 0 = torch's default
    device: str = "auto"
    amp: str = "auto"
    image_size: int = 224
    short_side: int = 256
    crop_scale_min: float = 0.35
    flip: bool = True
    blur_sigma: float = 10.0
    blur_probability: float = 0.5
    noise_std: float = 0.2
    video_every: int = 5
    time_budget: float = 0.0  # minutes, 0 = none
    checkpoint_every: int = 250
    log_every: int = 10
    progress: bool = True

    def resolved(self) -> TrainConfig:
        """Empty paths replaced by their defaults."""
        root = data_root()
        return replace(
            self,
            data=self.data or str(root / "imagenet-train"),
            val_data=self.val_data or str(root / "imagenet-val-dev"),
            encoder=self.encoder or self.blackbox,
        )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["upsampler_channels"] = list(self.upsampler_channels)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = dict(values)
        values["objective"] = ObjectiveConfig(**values.get("objective", {}))
        values["upsampler_channels"] = tuple(values.get("upsampler_channels", cls.upsampler_channels))
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training config fields: {sorted(unknown)}")
        return cls(**values)

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, run_dir: Path) -> TrainConfig:
        return cls.from_dict(json.loads((Path(run_dir) / CONFIG_NAME).read_text()))


# --- command line ------------------------------------------------------------------------------------------------

_DEFAULT = TrainConfig()
_FORMS = {
    "tv_reduction": TV_REDUCTIONS,
    "area_form": AREA_FORMS,
    "preserve_form": PRESERVE_FORMS,
    "destroy_form": DESTROY_FORMS,
}
_OBJECTIVE_HELP = {
    "tv_weight": "weight of the smoothness term TV(M)",
    "tv_reduction": "TV form: mean (mean squared neighbour difference), sum (eq. 5 literally), official",
    "tv_border": "extra penalty on the mask along the border (tv_reduction official)",
    "area_weight": "weight of the area term",
    "area_form": "mean: mean(M); power: mean((M + 5e-4) ** area_power); target: |mean(M) - area_target|",
    "area_power": "power of the area term (area_form power)",
    "area_target": "target mask area fraction for true classes (area_form target)",
    "preserve_weight": "weight of the preservation term on Phi(X, M)",
    "preserve_form": "log_prob: -log f_c (eq. 4); hinge_logit: max(0, best other logit - z_c + margin)",
    "destroy_weight": "weight of the destruction term on Phi(X, 1 - M)",
    "destroy_form": "prob_power: f_c ** destroy_power (eq. 4); hinge_logit: max(0, z_c - best other + margin)",
    "destroy_power": "power of the destroyed probability (prob_power)",
    "hinge_margin": "margin of the hinge forms",
    "fake_probability": "probability that an image's class selector is replaced by a wrong class",
    "embedding_weight": "weight of the embedding speed-up term (max presence high for true, low for fake classes)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer train",
        description=(
            "Train a masking model (Dabkowski & Gal 2017) against a frozen black-box classifier. Writes into --out: "
            "config.json, train.csv, val.csv, checkpoint.pt (resumable), best.safetensors, model.safetensors (the "
            "result, with its card) and grid.png. Run several GPUs with torchrun --nproc_per_node N."
        ),
        argument_default=argparse.SUPPRESS,  # only options given explicitly land in the namespace (layering)
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = _DEFAULT
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        help="training data: a labels.csv folder, ImageFolder layout, an unlabelled folder "
        "or a video (pseudo-labels = black-box top-1); default $SALIENCY_DATA/imagenet-train",
    )
    data.add_argument(
        "--val-data", help="boxes.csv folder for validation ('none' to skip); default $SALIENCY_DATA/imagenet-val-dev"
    )
    data.add_argument("--val-limit", type=int, help=f"validate on the first N images, 0 = all (default {d.val_limit})")
    data.add_argument("--val-every", type=int, help=f"validate every N steps (default {d.val_every})")
    data.add_argument(
        "--short-side", type=int, help=f"decode training images to this short side (default {d.short_side})"
    )
    data.add_argument(
        "--crop-scale-min",
        type=float,
        help=f"smallest random crop, fraction of the image area (default {d.crop_scale_min})",
    )
    data.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    data.add_argument(
        "--video-every", type=int, help=f"use every N-th frame of a training video (default {d.video_every})"
    )
    data.add_argument("--workers", type=int, help=f"threads decoding images (default {d.workers})")

    model = parser.add_argument_group("model")
    model.add_argument("--blackbox", help=f"black-box classifier to explain (default {d.blackbox})")
    model.add_argument("--encoder", help="frozen encoder (default: the black box's own features)")
    model.add_argument(
        "--upsampler-channels",
        type=int,
        nargs=3,
        help=f"decoder widths (default {' '.join(map(str, d.upsampler_channels))})",
    )
    model.add_argument(
        "--image-size", type=int, help=f"masker input size; crops are cut at this size (default {d.image_size})"
    )
    model.add_argument(
        "--embedding-init",
        choices=("classifier", "random"),
        help=f"class embeddings start as the classifier rows or random (default {d.embedding_init})",
    )
    model.add_argument(
        "--embedding-scale", type=float, help=f"scale of the feature filter logits (default {d.embedding_scale})"
    )
    model.add_argument(
        "--embedding-offset", type=float, help=f"offset of the feature filter logits (default {d.embedding_offset})"
    )
    model.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this model file's weights (fine-tuning; the "
        "architecture options must match the file's); default: a fresh masker",
    )

    objective = parser.add_argument_group("objective (a preset, then any weight or form)")
    objective.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="default (what trained best here), paper "
        "(eq. 4 and 5 with lambdas 10, 1e-3, 5, 0.3) or official (the authors' code: hinges on "
        "logits, area power 0.3); default: default",
    )
    for name, help_text in _OBJECTIVE_HELP.items():
        default = getattr(d.objective, name)
        objective.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            choices=_FORMS.get(name),
            help=f"{help_text} (default preset: {default})",
        )
    objective.add_argument(
        "--blur-sigma", type=float, help=f"sigma of the blur alternative at 224 pixels (default {d.blur_sigma})"
    )
    objective.add_argument(
        "--blur-probability",
        type=float,
        help=f"share of blurred alternatives, the rest noisy colours (default {d.blur_probability})",
    )
    objective.add_argument(
        "--noise-std", type=float, help=f"noise on the constant-colour alternative (default {d.noise_std})"
    )

    run = parser.add_argument_group("optimisation and run")
    run.add_argument("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    run.add_argument("--batch", type=int, help=f"images per step and process (default {d.batch})")
    run.add_argument("--lr", type=float, help=f"Adam learning rate (default {d.lr})")
    run.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        help=f"after warm-up; cosine decays to 10%% by the last step or the time budget (default {d.lr_schedule})",
    )
    run.add_argument("--warmup-steps", type=int, help=f"linear warm-up (default {d.warmup_steps})")
    run.add_argument("--seed", type=int, help=f"seed of every random draw (default {d.seed})")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's choice); 1 is fastest on a busy CPU"
    )
    run.add_argument("--amp", choices=("auto", "bf16", "off"), help="mixed precision: auto = bf16 on CUDA, off on CPU")
    run.add_argument(
        "--time-budget", type=float, help="minutes: stop in time to validate and save, whatever --steps says"
    )
    run.add_argument(
        "--checkpoint-every", type=int, help=f"write checkpoint.pt every N steps (default {d.checkpoint_every})"
    )
    run.add_argument("--log-every", type=int, help=f"train.csv row every N steps (default {d.log_every})")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    run.add_argument("--out", help=f"run folder (default {d.out})")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    return parser


def config_from_args(args: argparse.Namespace, saved: TrainConfig | None = None) -> TrainConfig:
    """The layered config. `saved`: the run's config.json when resuming."""
    given = {key: value for key, value in vars(args).items() if key != "resume"}
    if "upsampler_channels" in given:
        given["upsampler_channels"] = tuple(given["upsampler_channels"])
    objective_names = set(ObjectiveConfig.field_names()) - {"preset"}
    objective_given = {key: given.pop(key) for key in list(given) if key in objective_names}
    preset_name = given.pop("preset", None)
    if saved is not None:
        changed = sorted(
            key
            for key in {**given, **objective_given}
            if key not in RESUMABLE and _current(saved, key) != {**given, **objective_given}[key]
        ) + (["preset"] if preset_name not in (None, saved.objective.preset) else [])
        if changed:
            raise ValueError(
                f"--resume continues the run as configured in its config.json; these options differ and cannot "
                f"change: {', '.join(changed)} (allowed: {', '.join(sorted(RESUMABLE))})"
            )
        return replace(saved, **given)
    objective = preset(preset_name or "default", **objective_given)
    return replace(TrainConfig(), objective=objective, **given).resolved()


def _current(config: TrainConfig, key: str) -> Any:
    if hasattr(config.objective, key) and not hasattr(config, key):
        return getattr(config.objective, key)
    return getattr(config, key)
