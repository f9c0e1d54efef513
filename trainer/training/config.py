"""The training run's configuration: one dataclass, filled in three layers and saved as JSON beside the run.

    TrainConfig defaults  <-  objective preset (--preset)  <-  options given on the command line

With --resume the saved config.json replaces the first two layers, and only the options in RESUMABLE may be given
again (more steps, another time budget, ...): anything else would silently make a different run.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.paths import data_root
from trainer.cli import (
    COUNT,
    COUNT_OR_ZERO,
    NON_NEGATIVE,
    OPEN_FRACTION,
    POSITIVE,
    PROBABILITY,
    Parser,
    number,
)
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
# name -> (help, argparse type: the values that make sense); the forms are choices (_FORMS)
_OBJECTIVE_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "tv_weight": ("weight of the smoothness term TV(M), >= 0", NON_NEGATIVE),
    "tv_reduction": ("TV form: mean (mean squared neighbour difference), sum (eq. 5 literally), official", str),
    "tv_border": ("extra penalty on the mask along the border (tv_reduction official), >= 0", NON_NEGATIVE),
    "area_weight": ("weight of the area term, >= 0", NON_NEGATIVE),
    "area_form": ("mean: mean(M); power: mean((M + 5e-4) ** area_power); target: |mean(M) - area_target|", str),
    "area_power": ("power of the area term (area_form power), > 0", POSITIVE),
    "area_target": ("target mask area fraction for true classes (area_form target), in (0, 1)", OPEN_FRACTION),
    "preserve_weight": ("weight of the preservation term on Phi(X, M), >= 0", NON_NEGATIVE),
    "preserve_form": ("log_prob: -log f_c (eq. 4); hinge_logit: max(0, best other logit - z_c + margin)", str),
    "destroy_weight": ("weight of the destruction term on Phi(X, 1 - M), >= 0", NON_NEGATIVE),
    "destroy_form": ("prob_power: f_c ** destroy_power (eq. 4); hinge_logit: max(0, z_c - best other + margin)", str),
    "destroy_power": ("power of the destroyed probability (prob_power), > 0", POSITIVE),
    "hinge_margin": ("margin of the hinge forms, >= 0", NON_NEGATIVE),
    "fake_probability": (
        "probability that an image's class selector is replaced by a wrong class, in [0, 1)",
        number(float, 0, 1, high_open=True),
    ),
    "hard_negative_share": (
        "share of the fake selectors drawn among the black box's top --hard-negative-pool classes that it gives < 1%% "
        "on the image (hard negatives), in [0, 1]",
        PROBABILITY,
    ),
    "hard_negative_pool": (
        "how many of the black box's top classes hard negatives are drawn from, >= 2",
        number(int, 2),
    ),
    "fake_area_factor": ("the area term of a fake selector is multiplied by this, >= 0", NON_NEGATIVE),
    "embedding_weight": (
        "weight of the embedding speed-up term (max presence high for true, low for fake classes), >= 0",
        NON_NEGATIVE,
    ),
}


_DESCRIPTION = "\n\n".join(
    textwrap.fill(paragraph, 100)
    for paragraph in (
        "Train a masking model (Dabkowski & Gal 2017) against a frozen black-box classifier. Writes into --out: "
        "config.json, train.csv, val.csv, checkpoint.pt (resumable), best.safetensors, model.safetensors (the "
        "result, with its card) and grid.png. Run several GPUs with torchrun --nproc_per_node N.",
        "Arguments are checked before any image is decoded and before anything is written (the labels against the "
        "black box's classes, everything else before the black box loads): a bad one is answered with one line and "
        "exit status 2. Model cards record the data by name, content hash and image count, never by this machine's "
        "paths (config.json in the run folder keeps them, for --resume).",
    )
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m trainer train",
        description=_DESCRIPTION,
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
    data.add_argument(
        "--val-limit",
        type=COUNT_OR_ZERO,
        help=f"validate on the first N images, 0 = all; the final evaluation uses all (default {d.val_limit})",
    )
    data.add_argument(
        "--val-every",
        type=COUNT_OR_ZERO,
        help=f"validate every N steps, 0 = only after the last step (default {d.val_every})",
    )
    data.add_argument(
        "--short-side", type=COUNT, help=f"decode training images to this short side (default {d.short_side})"
    )
    data.add_argument(
        "--crop-scale-min",
        type=number(float, 0, 1, low_open=True),
        help=f"smallest random crop, fraction of the image area, in (0, 1] (default {d.crop_scale_min})",
    )
    data.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    data.add_argument(
        "--video-every", type=COUNT, help=f"use every N-th frame of a training video (default {d.video_every})"
    )
    data.add_argument("--workers", type=COUNT, help=f"threads decoding images (default {d.workers})")

    model = parser.add_argument_group("model")
    model.add_argument("--blackbox", help=f"black-box classifier to explain (default {d.blackbox})")
    model.add_argument("--encoder", help="frozen encoder (default: the black box's own features)")
    model.add_argument(
        "--upsampler-channels",
        type=COUNT,
        nargs=3,
        help=f"decoder widths (default {' '.join(map(str, d.upsampler_channels))})",
    )
    model.add_argument(
        "--image-size",
        type=number(int, 32, multiple_of=32),
        help=f"masker input size, a multiple of 32 (the encoder's stride); crops are cut at this size "
        f"(default {d.image_size})",
    )
    model.add_argument(
        "--embedding-init",
        choices=("classifier", "random"),
        help=f"class embeddings start as the classifier rows or random (default {d.embedding_init})",
    )
    model.add_argument(
        "--embedding-scale",
        type=POSITIVE,
        help=f"scale of the feature filter logits, > 0 (default {d.embedding_scale})",
    )
    model.add_argument(
        "--embedding-offset",
        type=number(float),
        help=f"offset of the feature filter logits (default {d.embedding_offset})",
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
    for name, (help_text, value_type) in _OBJECTIVE_OPTIONS.items():
        objective.add_argument(
            f"--{name.replace('_', '-')}",
            type=value_type,
            choices=_FORMS.get(name),
            help=f"{help_text} (default preset: {getattr(d.objective, name)})",
        )
    objective.add_argument(
        "--blur-sigma", type=POSITIVE, help=f"sigma of the blur alternative at 224 pixels, > 0 (default {d.blur_sigma})"
    )
    objective.add_argument(
        "--blur-probability",
        type=PROBABILITY,
        help=f"share of blurred alternatives, the rest noisy colours, in [0, 1] (default {d.blur_probability})",
    )
    objective.add_argument(
        "--noise-std", type=NON_NEGATIVE, help=f"noise on the constant-colour alternative (default {d.noise_std})"
    )

    run = parser.add_argument_group("optimisation and run")
    run.add_argument("--steps", type=COUNT, help=f"optimizer steps (default {d.steps})")
    run.add_argument("--batch", type=COUNT, help=f"images per step and process (default {d.batch})")
    run.add_argument("--lr", type=POSITIVE, help=f"Adam learning rate, > 0 (default {d.lr})")
    run.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        help=f"after warm-up; cosine decays to 10%% by the last step or the time budget (default {d.lr_schedule})",
    )
    run.add_argument("--warmup-steps", type=COUNT_OR_ZERO, help=f"linear warm-up (default {d.warmup_steps})")
    run.add_argument("--seed", type=COUNT_OR_ZERO, help=f"seed of every random draw (default {d.seed})")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto: cuda when torch sees a GPU)")
    run.add_argument(
        "--threads",
        type=COUNT_OR_ZERO,
        help="torch CPU threads, 0 = torch's choice (the default); 1 is fastest on a busy CPU",
    )
    run.add_argument("--amp", choices=("auto", "bf16", "off"), help="mixed precision: auto = bf16 on CUDA, off on CPU")
    run.add_argument(
        "--time-budget",
        type=NON_NEGATIVE,
        help="minutes: stop in time to validate and save, whatever --steps says (0 = no budget, the default)",
    )
    run.add_argument(
        "--checkpoint-every", type=COUNT, help=f"write checkpoint.pt every N steps (default {d.checkpoint_every})"
    )
    run.add_argument("--log-every", type=COUNT, help=f"train.csv row every N steps (default {d.log_every})")
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
