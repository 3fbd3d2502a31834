"""The box-classification objective interface, the normalised linear classifier and shared helpers.

An objective is an `nn.Module` owning everything about the classification branch of the RoI box head
except the features:

    objective.num_outputs          classifier columns K: C, C+1 or C+2 (first C = foreground classes)
    objective.loss(logits, labels) {name: scalar}; logits [R, K], labels [R] in 0..C (C = background)
    objective.scores(logits)       [R, C] probabilities that the detector thresholds, ranks and NMSes
    objective.make_classifier(d)   the last layer (nn.Linear or NormedLinear), initialised as the
                                   method's reference code does
Running statistics are registered buffers, so they travel with the model's state_dict. They change
only in training mode (`objective.train()`), so an evaluation-time loss leaves them alone.

Every subclass gets two guards from `Objective.__init_subclass__`, without code of its own: its
constructor's options are checked against their defaults' types (a float option must be a finite
number, an int an integer, a bool a bool; ValueError naming the option), and its `loss` computes in
float32 at least (half and bfloat16 logits are cast, autocast is off inside), so that sums over
[R, K] terms cannot overflow float16.
"""
from __future__ import annotations

import functools
import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from rog.losses.counts import CategoryCounts
from rog.losses.inputs import at_least_float32, check_finite, check_logits_labels, check_option


class NormedLinear(nn.Linear):
    """logits = temperature * <x / |x|, w / |w|> + b: mmdet's NormedLinear (Seesaw and ECM configs).

    x: [R, in_features] -> [R, out_features]. Weight ~ N(0, 0.01), bias 0, eps 1e-6 as in mmdet.
    """

    def __init__(self, in_features: int, out_features: int, temperature: float = 20.0, eps: float = 1e-6,
                 bias: bool = True):
        self.temperature = float(temperature)
        self.eps = float(eps)
        super().__init__(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 0.0, 0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight / (self.weight.norm(dim=1, keepdim=True) + self.eps)
        x = x / (x.norm(dim=1, keepdim=True) + self.eps)
        return F.linear(self.temperature * x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}"


def prior_bias(prior_prob: float) -> float:
    """Bias b with sigmoid(b) = prior_prob: -log((1 - p) / p), e.g. -log(99) for p = 0.01."""
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob must lie in (0, 1), got {prior_prob}")
    return -math.log((1.0 - prior_prob) / prior_prob)


class Objective(nn.Module):
    """Base class: input checks, classifier construction, `forward = loss`.

    Subclasses set `extra_columns` (K = C + extra_columns) and implement `loss` and `scores`.
    num_classes:   C, foreground classes.
    loss_weight:   multiplies every loss term.
    normed_linear: the detector should use NormedLinear(temperature) instead of nn.Linear.
    """

    name = "objective"
    extra_columns = 1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_options(cls.__dict__["__init__"])
        if "loss" in cls.__dict__:
            cls.loss = _in_float32(cls.__dict__["loss"])

    def __init__(self, num_classes: int, loss_weight: float = 1.0, normed_linear: bool = False,
                 temperature: float = 20.0):
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"{self.name}: num_classes must be a positive integer, got {num_classes!r}")
        check_finite(self.name, loss_weight=loss_weight, temperature=temperature)
        check_option(self.name, "normed_linear", normed_linear, False)
        self.num_classes = int(num_classes)
        self.loss_weight = float(loss_weight)
        self.normed_linear = bool(normed_linear)
        self.temperature = float(temperature)

    @property
    def num_outputs(self) -> int:
        return self.num_classes + self.extra_columns

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, num_outputs={self.num_outputs}"

    # ---- inputs -----------------------------------------------------------------------------------
    def check_columns(self, logits: torch.Tensor) -> None:
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"{self.name}: logits must be [R, K], got {shape}")
        if logits.shape[1] != self.num_outputs:
            raise ValueError(f"{self.name}: logits have {logits.shape[1]} columns, expected "
                             f"{self.num_outputs} ({self.num_classes} classes + {self.extra_columns} extra)")

    def check(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Validate logits [R, K] and labels [R]; return labels as int64 on logits' device."""
        check_logits_labels(self.name, logits, labels, self.num_classes, min_columns=self.num_outputs)
        self.check_columns(logits)
        return labels.to(device=logits.device, dtype=torch.long)

    # ---- classifier -------------------------------------------------------------------------------
    def init_classifier(self, layer: nn.Linear) -> None:
        """Initialise the classifier as mmdet's bbox head does: weight ~ N(0, 0.01), bias 0."""
        nn.init.normal_(layer.weight, 0.0, 0.01)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    def make_classifier(self, in_features: int) -> nn.Linear:
        """The classification layer [R, in_features] -> [R, num_outputs], initialised for this objective."""
        if self.normed_linear:
            layer = NormedLinear(in_features, self.num_outputs, temperature=self.temperature)
        else:
            layer = nn.Linear(in_features, self.num_outputs)
        self.init_classifier(layer)
        return layer

    # ---- the objective ----------------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(logits, labels)


def _checked_options(init):
    """Wrap a constructor: each argument with a bool, int or float default is checked against that type."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked(self, *args, **kwargs):
        try:
            arguments = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            arguments = {}  # the constructor itself reports a wrong call
        for key, value in arguments.items():
            check_option(type(self).name, key, value, signature.parameters[key].default)
        init(self, *args, **kwargs)

    return checked


def _in_float32(loss):
    """Wrap a loss: half and bfloat16 logits are computed in float32, with autocast off."""
    @functools.wraps(loss)
    def in_float32(self, logits, labels, *args, **kwargs):
        logits = at_least_float32(logits)
        if isinstance(logits, torch.Tensor):
            with torch.autocast(logits.device.type, enabled=False):
                return loss(self, logits, labels, *args, **kwargs)
        return loss(self, logits, labels, *args, **kwargs)

    return in_float32


class SigmoidPriorInit:
    """Mixin for sigmoid heads: classifier bias = -log((1 - prior_prob) / prior_prob), weight N(0, 0.01)."""

    prior_prob: float

    def init_classifier(self, layer: nn.Linear) -> None:
        nn.init.normal_(layer.weight, 0.0, 0.01)
        if layer.bias is not None:
            nn.init.constant_(layer.bias, prior_bias(self.prior_prob))


# ---- helpers shared by the families ---------------------------------------------------------------
def one_hot(labels: torch.Tensor, num_columns: int, dtype: torch.dtype) -> torch.Tensor:
    """labels [R] -> [R, num_columns] targets (label C = background sets column C when it exists)."""
    return F.one_hot(labels, num_columns).to(dtype)


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """sum_{i,j} w_ij BCE(sigmoid(z_ij), t_ij) / R: the mmdet/detectron2 sigmoid-head reduction.

    logits, targets, weights: [R, K] (weights broadcastable, None = 1). Returns a scalar; 0 if R = 0.
    """
    terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if weights is not None:
        terms = terms * weights
    return terms.sum() / max(logits.shape[0], 1)


def objectness_scores(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """sigmoid(z_c) (1 - sigmoid(z_bg)) for c < C, with z_bg = column C: [R, >C] -> [R, C]."""
    return torch.sigmoid(logits[:, :num_classes]) * torch.sigmoid(-logits[:, num_classes:num_classes + 1])


def require_counts(name: str, class_counts: CategoryCounts | None, num_classes: int,
                   what: str) -> CategoryCounts:
    """Raise ValueError naming the objective unless `class_counts` holds [C] statistics."""
    if class_counts is None:
        raise ValueError(f"{name}: needs class_counts ({what} of the training annotations), got None")
    if not isinstance(class_counts, CategoryCounts):
        raise ValueError(f"{name}: class_counts must be a rog.losses.counts.CategoryCounts, "
                         f"got {type(class_counts).__name__}")
    if class_counts.num_classes != num_classes:
        raise ValueError(f"{name}: class_counts cover {class_counts.num_classes} classes, "
                         f"expected {num_classes}")
    return class_counts


def tail_classes(class_counts: CategoryCounts, lambda_: float) -> torch.Tensor:
    """[C] bool, image_count / num_images < lambda_: EQL's T_lambda and DropLoss's tail set."""
    return class_counts.image_frequency < lambda_


def uniform(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) draws: from `generator` (on its own device, then moved) or from the global RNG."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)
