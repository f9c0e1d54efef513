"""The training objective, eq. 4 and 5 of the paper, with every weight and form an option.

    L(M) = tv_weight * TV(M) + area_weight * AREA(M) + preserve_weight * PRESERVE(Phi(X, M))
           + destroy_weight * DESTROY(Phi(X, 1 - M)) + embedding_weight * EMBEDDING

Per image, averaged over the batch. A "fake" image (its class selector was replaced by a wrong class, with
probability `fake_probability`) gets the area term alone (and the embedding term, pushed the other way), so the
model learns to answer an empty mask for a class that is not there.

Presets (PRESETS below): `paper` (the paper's equation and lambdas), `official` (the authors' public code: hinge
losses on logits, area power 0.3) and `default` (what trained well here, see the README).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F

TV_REDUCTIONS = ("mean", "sum", "official")
AREA_FORMS = ("mean", "power", "target")
PRESERVE_FORMS = ("log_prob", "hinge_logit")
DESTROY_FORMS = ("prob_power", "hinge_logit")


@dataclass(frozen=True)
class ObjectiveConfig:
    preset: str = "default"
    # TV on the model's own 56 x 56 mask. "mean": mean squared difference of horizontal + vertical neighbours;
    # "sum": eq. 5 literally (sum of squares); "official": the authors' code, (sum + border) / 2.
    tv_weight: float = 10.0
    tv_reduction: str = "mean"
    tv_border: float = 0.0  # "official" only: extra penalty on mask values along the image border
    # "mean": AV(M) = mean(M) (eq. 4); "power": mean((M + 5e-4) ** area_power) (authors' code);
    # "target": |mean(M) - area_target| for true classes, mean(M) for fake ones (Fong et al.'s area constraint).
    area_weight: float = 8.0
    area_form: str = "mean"
    area_power: float = 0.3
    area_target: float = 0.3
    # "log_prob": -log f_c(Phi(X, M)) (eq. 4); "hinge_logit": max(0, max_other - z_c + margin) (authors' code).
    preserve_weight: float = 1.0
    preserve_form: str = "log_prob"
    # "prob_power": f_c(Phi(X, 1 - M)) ** destroy_power (eq. 4); "hinge_logit": max(0, z_c - max_other + margin).
    destroy_weight: float = 5.0
    destroy_form: str = "prob_power"
    destroy_power: float = 0.3
    hinge_margin: float = 1.0
    fake_probability: float = 0.3
    # Share of the fake selectors drawn among the black box's top `hard_negative_pool` classes on the image that it
    # gives less than 1% (a hard negative: a class it ranks as plausible yet does not see, e.g. "minivan" on a street
    # of pedestrians); the rest are drawn uniformly from the wrong classes (the paper's fake labels).
    hard_negative_share: float = 0.0
    hard_negative_pool: int = 100
    # The area term of a fake selector is multiplied by this (its mask must be empty; 1 = the paper's weighting).
    fake_area_factor: float = 1.0
    # BCE on max_ij sigmoid(presence logit): high for the true class, low for a fake one (section 4.1).
    embedding_weight: float = 1.0

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("tv_reduction", self.tv_reduction, TV_REDUCTIONS),
            ("area_form", self.area_form, AREA_FORMS),
            ("preserve_form", self.preserve_form, PRESERVE_FORMS),
            ("destroy_form", self.destroy_form, DESTROY_FORMS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if not 0 <= self.fake_probability < 1:
            raise ValueError(f"fake_probability must lie in [0, 1), not {self.fake_probability}")
        if not 0 <= self.hard_negative_share <= 1:
            raise ValueError(f"hard_negative_share must lie in [0, 1], not {self.hard_negative_share}")
        if self.hard_negative_pool < 2:
            raise ValueError(f"hard_negative_pool must be at least 2, not {self.hard_negative_pool}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in fields(cls)]


PRESETS: dict[str, ObjectiveConfig] = {
    "paper": ObjectiveConfig(
        preset="paper",
        tv_weight=10.0,
        tv_reduction="mean",
        area_weight=1e-3,
        area_form="mean",
        preserve_weight=1.0,
        preserve_form="log_prob",
        destroy_weight=5.0,
        destroy_form="prob_power",
        destroy_power=0.3,
    ),
    "official": ObjectiveConfig(
        preset="official",
        tv_weight=0.5,
        tv_reduction="official",
        tv_border=0.3,
        area_weight=8.0,
        area_form="power",
        area_power=0.3,
        preserve_weight=0.3,
        preserve_form="hinge_logit",
        destroy_weight=1.0,
        destroy_form="hinge_logit",
    ),
    "default": ObjectiveConfig(),
}


def preset(name: str, **overrides: object) -> ObjectiveConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown objective preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]


# --- the terms, per image -------------------------------------------------------------------------------------


def tv_term(mask: torch.Tensor, reduction: str = "mean", border: float = 0.0) -> torch.Tensor:
    """Smoothness of (B, 1, H, W) masks -> (B,)."""
    dx = (mask[..., :, 1:] - mask[..., :, :-1]).pow(2).flatten(1)
    dy = (mask[..., 1:, :] - mask[..., :-1, :]).pow(2).flatten(1)
    if reduction == "mean":
        return dx.mean(1) + dy.mean(1)
    if reduction == "sum":
        return dx.sum(1) + dy.sum(1)
    edges = mask[..., 0, :].pow(2).sum((1, 2)) + mask[..., -1, :].pow(2).sum((1, 2))
    edges = edges + mask[..., :, 0].pow(2).sum((1, 2)) + mask[..., :, -1].pow(2).sum((1, 2))
    return (dx.sum(1) + dy.sum(1) + border * edges) / 2


def area_term(
    mask: torch.Tensor, is_real: torch.Tensor, form: str = "mean", power: float = 0.3, target: float = 0.3
) -> torch.Tensor:
    """Size of (B, 1, H, W) masks -> (B,). `is_real` (B,) bool: False for fake class selectors."""
    if form == "power":
        return (mask + 5e-4).pow(power).flatten(1).mean(1)
    area = mask.flatten(1).mean(1)
    if form == "mean":
        return area
    return torch.where(is_real, (area - target).abs(), area)


def _target_and_best_other(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    target_logit = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return target_logit, others.max(1).values


def preserve_term(
    logits: torch.Tensor, targets: torch.Tensor, form: str = "log_prob", margin: float = 1.0
) -> torch.Tensor:
    """The preserved image must still show class c: logits (R, K) of Phi(X, M) -> (R,)."""
    if form == "log_prob":
        return -F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
    target_logit, best_other = _target_and_best_other(logits.float(), targets)
    return F.relu(best_other - target_logit + margin)


def destroy_term(
    logits: torch.Tensor, targets: torch.Tensor, form: str = "prob_power", power: float = 0.3, margin: float = 1.0
) -> torch.Tensor:
    """The destroyed image must not show class c: logits (R, K) of Phi(X, 1 - M) -> (R,)."""
    if form == "prob_power":
        log_prob = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        return torch.exp(power * log_prob)  # = f_c ** power, without the infinite slope of x ** 0.3 at 0
    target_logit, best_other = _target_and_best_other(logits.float(), targets)
    return F.relu(target_logit - best_other + margin)


def embedding_term(presence_logits: torch.Tensor, is_real: torch.Tensor) -> torch.Tensor:
    """max_ij sigmoid(presence logit) towards 1 for the true class, 0 for a fake one: (B, 1, h, w) -> (B,)."""
    strongest = presence_logits.float().flatten(1).max(1).values
    return F.binary_cross_entropy_with_logits(strongest, is_real.float(), reduction="none")


# --- the whole objective ----------------------------------------------------------------------------------------


def objective(
    config: ObjectiveConfig,
    mask: torch.Tensor,
    mask_low: torch.Tensor,
    presence_logits: torch.Tensor,
    preserved_logits: torch.Tensor,
    destroyed_logits: torch.Tensor,
    targets: torch.Tensor,
    is_real: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Weighted terms (each averaged over the batch of B images) and their sum, `loss`.

    mask (B, 1, H, W), mask_low (B, 1, h, w), presence_logits (B, 1, h', w'); preserved_logits and
    destroyed_logits (R, K) for the R real images only, in batch order; targets (B,) the selected classes.
    """
    batch = mask.shape[0]
    real_targets = targets[is_real]

    def batch_mean(per_real: torch.Tensor) -> torch.Tensor:
        return per_real.sum() / batch  # fake images contribute 0 to the term, and count in the mean

    terms = {
        "tv": config.tv_weight * batch_mean(tv_term(mask_low[is_real], config.tv_reduction, config.tv_border)),
        "area": config.area_weight
        * (
            area_term(mask, is_real, config.area_form, config.area_power, config.area_target)
            * torch.where(is_real, 1.0, config.fake_area_factor)
        ).mean(),
        "preserve": config.preserve_weight
        * batch_mean(preserve_term(preserved_logits, real_targets, config.preserve_form, config.hinge_margin)),
        "destroy": config.destroy_weight
        * batch_mean(
            destroy_term(destroyed_logits, real_targets, config.destroy_form, config.destroy_power, config.hinge_margin)
        ),
        "embedding": config.embedding_weight * embedding_term(presence_logits, is_real).mean(),
    }
    terms["loss"] = sum(terms.values())  # type: ignore[assignment]
    return terms
