"""The methods an evaluation compares, each explaining the same black box on the same images.

Two kinds:
- `BoxMethod`: answers boxes directly (Center box, Max box, ground-truth boxes); both localisation protocols use them
  as they are.
- `MapMethod`: answers a saliency map per image, (B, 1, H, W) for images (B, 3, H, W) in [0, 1] at the black box's
  input size. `normalised` says whether the map is rescaled per image to [0, 1] (min-max) before thresholding:
  gradients and class activation maps have no natural scale.

Registry: `METHODS` name -> (display name, factory(context) -> method), built by `create_method`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.runtime.gate import GATE
from trainer import evidence
from trainer import objective as objective_terms
from trainer.evaluation.metrics import center_box, full_box


@dataclass
class MethodContext:
    """What factories need: the black box, the device, the masking model (when one is evaluated), options."""

    blackbox: nn.Module
    device: torch.device
    masker: nn.Module | None = None
    masker_label: str = "Masking model"
    iterations: int = 300
    rise_masks: int = 1000
    gate: float = GATE  # the engine's gate (engine.runtime.gate)


class BoxMethod:
    """A method that answers boxes, (x0, y0, x1, y1) in pixels of the evaluated image."""

    name: str = ""
    label: str = ""

    def boxes(self, width: int, height: int, gt_boxes: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError


class MapMethod:
    """A method that answers saliency maps (B, 1, H, W) for images (B, 3, H, W) in [0, 1] and classes (B,)."""

    name: str = ""
    label: str = ""
    normalised: bool = False  # True: the map is rescaled per image to [0, 1] before thresholding

    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# --- boxes --------------------------------------------------------------------------------------------------------


class CenterBox(BoxMethod):
    name, label = "center", "Center box"

    def boxes(self, width: int, height: int, gt_boxes: np.ndarray) -> list[np.ndarray]:
        return [center_box(width, height)]


class MaxBox(BoxMethod):
    name, label = "max", "Max box"

    def boxes(self, width: int, height: int, gt_boxes: np.ndarray) -> list[np.ndarray]:
        return [full_box(width, height)]


class GroundTruthBoxes(BoxMethod):
    """Every ground-truth box of the image: the saliency metric is averaged over them (the paper's rule)."""

    name, label = "gt", "Ground-truth boxes"

    def boxes(self, width: int, height: int, gt_boxes: np.ndarray) -> list[np.ndarray]:
        return list(gt_boxes)


# --- maps ---------------------------------------------------------------------------------------------------------


class MaskingModel(MapMethod):
    """The masking model: one forward pass, masks already in [0, 1]."""

    name = "model"

    def __init__(self, masker: nn.Module, label: str = "Masking model") -> None:
        self.masker = masker
        self.label = label

    @torch.no_grad()
    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.masker(images, classes).float()


class GatedMaskingModel(MapMethod):
    """The masking model behind the black box's gate: the mask is zeroed where the black box gives the target less
    than `threshold` on the image (a class the black box does not see has no evidence to show). Its time includes a
    black-box pass, which the engine's saliency graph makes anyway."""

    name = "model-gated"

    def __init__(self, masker: nn.Module, blackbox: nn.Module, threshold: float, label: str = "Masking model") -> None:
        self.masker, self.blackbox, self.threshold = masker, blackbox, threshold
        self.label = f"{label}, gated at p < {threshold:g}"

    @torch.no_grad()
    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        masks = self.masker(images, classes).float()
        probability = F.softmax(self.blackbox(images).float(), dim=1).gather(1, classes[:, None])[:, 0]
        return masks * (probability >= self.threshold).float()[:, None, None, None]


class Gradient(MapMethod):
    """Simonyan et al. (2014): |d logit_c / d image|, maximum over the colour channels."""

    name, label, normalised = "gradient", "Gradient (Simonyan et al.)", True

    def __init__(self, blackbox: nn.Module) -> None:
        self.blackbox = blackbox

    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            images = images.detach().clone().requires_grad_(True)
            logits = self.blackbox(images)
            # the images do not interact, so one backward pass of the summed class scores gives each its gradient
            logits.gather(1, classes[:, None]).sum().backward()
        assert images.grad is not None
        return images.grad.abs().amax(dim=1, keepdim=True)


class GradCam(MapMethod):
    """Grad-CAM (Selvaraju et al.) from the `grad-cam` package, on the black box's last feature map.

    The package upsamples the map to the input size and rescales it per image to [0, 1] (min-max)."""

    name, label, normalised = "gradcam", "Grad-CAM (Selvaraju et al.)", True

    def __init__(self, blackbox: nn.Module) -> None:
        from pytorch_grad_cam import GradCAM

        self.cam = GradCAM(model=blackbox, target_layers=[_last_feature_layer(blackbox)])

    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        targets = [ClassifierOutputTarget(int(c)) for c in classes]
        # the black box is frozen: only an input that requires grad makes the graph the package's hooks need
        inputs = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            cams = self.cam(input_tensor=inputs, targets=targets)  # numpy (B, H, W)
        return torch.from_numpy(cams).to(images.device)[:, None].float()


def _last_feature_layer(blackbox: nn.Module) -> nn.Module:
    """The layer whose output the classifier pools: EfficientNet's bn2 (after conv_head), ResNet's layer4."""
    net = getattr(blackbox, "net", blackbox)
    for name in ("bn2", "layer4", "inception5b", "features"):
        if hasattr(net, name):
            return getattr(net, name)
    raise ValueError(f"Grad-CAM: no known last feature layer in {type(net).__name__}")


class IterativeMask(MapMethod):
    """Fong & Vedaldi (2017): optimise one mask per image against the black box, with the masking model's objective.

    The mask lives at `resolution` x `resolution` (logits, upsampled bilinearly and squashed with a sigmoid), is
    optimised with Adam for `iterations` steps on the default training objective (TV on the low-resolution mask,
    area, preserve and destroy terms), with the blurred image as the alternative (deterministic, as in Fong & Vedaldi).
    Images in a batch are optimised together; their losses are summed, so each mask gets its own gradient.
    """

    name, label = "iterative", "Iterative mask optimisation (Fong & Vedaldi)"

    def __init__(self, blackbox: nn.Module, iterations: int = 300, resolution: int = 28, learning_rate: float = 0.1):
        self.blackbox = blackbox
        self.iterations = iterations
        self.resolution = resolution
        self.learning_rate = learning_rate
        self.config = objective_terms.preset("default")
        self.label = f"{IterativeMask.label}, {iterations} iterations"

    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        images = images.detach()
        alternative = evidence.blur(images)
        logits = torch.zeros(batch, 1, self.resolution, self.resolution, device=images.device, requires_grad=True)
        optimiser = torch.optim.Adam([logits], lr=self.learning_rate)
        config = self.config
        real = torch.ones(batch, dtype=torch.bool, device=images.device)
        with torch.enable_grad():
            for _ in range(self.iterations):
                mask_low = torch.sigmoid(logits)
                mask = F.interpolate(mask_low, size=(height, width), mode="bilinear", align_corners=False)
                both = torch.cat(
                    [
                        evidence.remove_evidence(images, mask, alternative),
                        evidence.remove_evidence(images, 1 - mask, alternative),
                    ]
                )
                preserved, destroyed = self.blackbox(both).split(batch)  # one pass for both terms
                per_image = (
                    config.tv_weight * objective_terms.tv_term(mask_low, config.tv_reduction, config.tv_border)
                    + config.area_weight * objective_terms.area_term(mask, real, config.area_form, config.area_power)
                    + config.preserve_weight * objective_terms.preserve_term(preserved, classes, config.preserve_form)
                    + config.destroy_weight
                    * objective_terms.destroy_term(destroyed, classes, config.destroy_form, config.destroy_power)
                )
                optimiser.zero_grad(set_to_none=True)
                per_image.sum().backward()
                optimiser.step()
        with torch.no_grad():
            return F.interpolate(torch.sigmoid(logits), size=(height, width), mode="bilinear", align_corners=False)


class Rise(MapMethod):
    """RISE (Petsiuk et al., BMVC 2018): the black box's probability of the class on the image under `count` random
    masks, each mask weighted by it: S = sum_i f_c(X * M_i) M_i / (count * p).

    Masks as in the paper: a `grid` x `grid` grid of cells kept with probability `keep`, upsampled bilinearly to
    (grid + 1) cells' size and cropped at a random shift, so that the kept regions are smooth and not aligned to a
    grid. Masked pixels show grey 127/255 (zero after the black box's normalisation, as the paper masks the
    normalised input). One seeded set of masks for every image; the black box sees `chunk` masked images at a time.
    By far the slowest map after the iterative one: `count` black-box passes per image.
    """

    name, label, normalised = "rise", "RISE (Petsiuk et al.)", True
    FILL = 127 / 255

    def __init__(
        self, blackbox: nn.Module, count: int = 1000, grid: int = 7, keep: float = 0.5, seed: int = 0, chunk: int = 64
    ) -> None:
        self.blackbox = blackbox
        self.count, self.grid, self.keep, self.seed, self.chunk = count, grid, keep, seed, chunk
        self.label = f"{Rise.label}, {count} masks"
        self._masks: torch.Tensor | None = None

    def masks(self, size: int, device: torch.device) -> torch.Tensor:
        """(count, 1, size, size) soft masks in [0, 1], made once (seeded)."""
        if self._masks is None or self._masks.shape[-1] != size or self._masks.device != device:
            generator = torch.Generator().manual_seed(self.seed)
            cells = (torch.rand(self.count, 1, self.grid, self.grid, generator=generator) < self.keep).float()
            cell = -(-size // self.grid)  # ceil: the upsampled grid covers the image with one cell to spare
            upsampled = F.interpolate(cells, size=((self.grid + 1) * cell,) * 2, mode="bilinear", align_corners=False)
            shifts = torch.randint(0, cell, (self.count, 2), generator=generator)
            self._masks = torch.stack(
                [upsampled[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(shifts.tolist())]
            ).to(device)
        return self._masks

    @torch.no_grad()
    def maps(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        masks = self.masks(images.shape[-1], images.device)
        saliency = []
        for image, target in zip(images, classes):
            total = torch.zeros(1, *images.shape[-2:], device=images.device)
            for part in masks.split(self.chunk):
                masked = image * part + self.FILL * (1 - part)  # (n, 3, S, S)
                probability = F.softmax(self.blackbox(masked).float(), dim=1)[:, target]  # (n,)
                total += (probability[:, None, None, None] * part).sum(0)
            saliency.append(total / (self.count * self.keep))
        return torch.stack(saliency)


# --- registry -----------------------------------------------------------------------------------------------------

Method = BoxMethod | MapMethod


def _model(context: MethodContext) -> Method:
    if context.masker is None:
        raise ValueError("the masking model row needs a masker (--model PATH or --untrained)")
    return MaskingModel(context.masker, context.masker_label)


def _gated_model(context: MethodContext) -> Method:
    if context.masker is None:
        raise ValueError("the gated masking model row needs a masker (--model PATH or --untrained)")
    return GatedMaskingModel(context.masker, context.blackbox, context.gate, context.masker_label)


METHODS: dict[str, Callable[[MethodContext], Method]] = {
    "center": lambda context: CenterBox(),
    "max": lambda context: MaxBox(),
    "gt": lambda context: GroundTruthBoxes(),
    "gradient": lambda context: Gradient(context.blackbox),
    "gradcam": lambda context: GradCam(context.blackbox),
    "iterative": lambda context: IterativeMask(context.blackbox, context.iterations),
    "rise": lambda context: Rise(context.blackbox, context.rise_masks),
    "model": _model,
    "model-gated": _gated_model,
}
MODEL_METHODS = ("model", "model-gated")  # the rows that need a masking model
DEFAULT_METHODS = ("center", "max", "gt", "gradient", "gradcam", "iterative", "rise", "model", "model-gated")


def create_method(name: str, context: MethodContext) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name](context)


def normalise_per_image(maps: torch.Tensor) -> torch.Tensor:
    """Min-max rescale each (1, H, W) map of a (B, 1, H, W) batch to [0, 1]; a constant map becomes all zeros."""
    flat = maps.flatten(1)
    low = flat.min(1).values[:, None, None, None]
    span = (flat.max(1).values - flat.min(1).values)[:, None, None, None]
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))
