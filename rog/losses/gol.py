"""Gumbel optimised loss (GOL, Alexandridis et al., 2022): Gumbel activation + DropLoss, kostas1515/GOL.

C outputs, no background column (a background RoI has an all-zero target row).

    p_ij = exp(-exp(-clamp(z_ij, clamp_min, clamp_max)))          (Gumbel CDF, clamp [-4, 10])
    loss_cls = sum_{i,j} d_ij BCE(p_ij, t_ij) / R

DropLoss weights d, with the tail set T = {j : image_count_j / num_images < lambda_}:
  * foreground RoI, j in T, t_ij = 0: d = 0 (as EQL);
  * background RoI, j in T: d = 1 if U_ij <= ratio else 0, U_ij ~ U(0, 1), ratio = share of the
    batch's foreground RoIs whose label is in T; with no foreground RoI every entry is kept (the
    official code compares with a NaN ratio, which keeps them all);
  * every other entry: d = 1.
U is drawn as one [R, C] tensor from `generator` (if given) or the global RNG, so a seed reproduces it.
Scores: exp(-exp(-z_c)), no objectness factor. Classifier init: weight 0.001, bias -2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rog.losses.counts import CategoryCounts
from rog.losses.objective_base import Objective, one_hot, require_counts, tail_classes, uniform


class GumbelDropLoss(Objective):
    """lambda_ 0.0011 (815 LVIS v1 tail classes); init_weight 0.001 and init_bias -2 for the classifier."""

    name = "gol"
    extra_columns = 0

    def __init__(self, num_classes: int, class_counts: CategoryCounts | None = None, lambda_: float = 0.0011,
                 clamp_min: float = -4.0, clamp_max: float = 10.0, init_weight: float = 0.001,
                 init_bias: float = -2.0, loss_weight: float = 1.0, normed_linear: bool = False,
                 temperature: float = 20.0, generator: torch.Generator | None = None):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        counts = require_counts(self.name, class_counts, num_classes, "image counts")
        self.lambda_ = float(lambda_)
        self.clamp_min, self.clamp_max = float(clamp_min), float(clamp_max)
        self.init_weight, self.init_bias = float(init_weight), float(init_bias)
        self.generator = generator
        self.register_buffer("tail", tail_classes(counts, self.lambda_))

    def init_classifier(self, layer: nn.Linear) -> None:
        nn.init.constant_(layer.weight, self.init_weight)
        if layer.bias is not None:
            nn.init.constant_(layer.bias, self.init_bias)

    def drop_weights(self, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """DropLoss weights d: labels [R], targets [R, C] -> [R, C] of 0/1."""
        C = self.num_classes
        tail = self.tail[None, :]
        foreground = (labels < C)[:, None]
        weights = ~(foreground & tail & (targets == 0))
        draws = uniform((labels.shape[0], C), targets.device, self.generator)
        if bool(foreground.any()):
            ratio = self.tail[labels[labels < C]].double().mean()
            weights &= ~(~foreground & tail & (draws > ratio))
        return weights.to(targets.dtype)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        targets = one_hot(labels, self.num_classes + 1, logits.dtype)[:, :self.num_classes]
        probs = self.activation(logits.clamp(self.clamp_min, self.clamp_max))
        terms = F.binary_cross_entropy(probs, targets, reduction="none")
        loss = (terms * self.drop_weights(labels, targets)).sum() / max(logits.shape[0], 1)
        return {"loss_cls": self.loss_weight * loss}

    @staticmethod
    def activation(logits: torch.Tensor) -> torch.Tensor:
        """Gumbel CDF exp(-exp(-z))."""
        return torch.exp(-torch.exp(-logits))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return self.activation(logits)
