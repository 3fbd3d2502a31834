"""Equalization loss (EQL, Tan et al., CVPR 2020), as in tztztztztz/eqlv2's `EQL` (LVIS v1 config).

C sigmoid outputs, no background column: a background RoI has an all-zero target row.

    w_ij = 1 - E(i) T_lambda(f_j) (1 - t_ij)
    loss_cls = sum_{i,j} w_ij BCE(z_ij, t_ij) / R

E(i) = 1 for a foreground RoI, T_lambda(f_j) = 1 for a tail class, f_j = image_count_j / num_images
< lambda. So on foreground RoIs the negative (discouraging) terms of tail classes are dropped; on
background RoIs every term is kept. lambda = 0.0011 is the LVIS v1 config value (815 tail classes);
the paper's 1.76e-3 was for LVIS v0.5. Scores: sigmoid(z_c).
"""
from __future__ import annotations

import torch

from rog.losses.counts import CategoryCounts
from rog.losses.objective_base import (Objective, SigmoidPriorInit, one_hot, require_counts, tail_classes,
                                       weighted_bce)


class EQL(SigmoidPriorInit, Objective):
    """class_counts: image counts give the tail set; prior_prob 0.001 as the eqlv2 repo's sigmoid heads."""

    name = "eql"
    extra_columns = 0

    def __init__(self, num_classes: int, class_counts: CategoryCounts | None = None, lambda_: float = 0.0011,
                 loss_weight: float = 1.0, prior_prob: float = 0.001, normed_linear: bool = False,
                 temperature: float = 20.0):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        counts = require_counts(self.name, class_counts, num_classes, "image counts")
        self.lambda_ = float(lambda_)
        self.prior_prob = float(prior_prob)
        self.register_buffer("tail", tail_classes(counts, self.lambda_))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        targets = one_hot(labels, self.num_classes + 1, logits.dtype)[:, :self.num_classes]
        foreground = (labels < self.num_classes).to(logits.dtype)[:, None]
        weights = 1 - foreground * self.tail.to(logits.dtype)[None, :] * (1 - targets)
        return {"loss_cls": self.loss_weight * weighted_bce(logits, targets, weights)}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return torch.sigmoid(logits)
