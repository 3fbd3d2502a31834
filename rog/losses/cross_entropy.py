"""Plain cross-entropy heads: ROG's sigmoid CE with an objectness column, and softmax CE."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rog.losses.objective_base import Objective, SigmoidPriorInit, objectness_scores, one_hot, weighted_bce


class SigmoidCE(SigmoidPriorInit, Objective):
    """C+1 independent sigmoids, the last one the background ("objectness") column (ROG's final config).

    loss_cls = sum_i sum_{c=0..C} BCE(z_ic, t_ic) / R, with t one-hot over C+1 (background RoIs: t_iC = 1).
    scores   = sigmoid(z_c) (1 - sigmoid(z_C)).
    prior_prob: classifier bias init -log((1-p)/p); 0.01 gives -log(99).
    """

    name = "sigmoid_ce"
    extra_columns = 1

    def __init__(self, num_classes: int, loss_weight: float = 1.0, prior_prob: float = 0.01,
                 normed_linear: bool = False, temperature: float = 20.0):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        self.prior_prob = float(prior_prob)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        targets = one_hot(labels, self.num_outputs, logits.dtype)
        return {"loss_cls": self.loss_weight * weighted_bce(logits, targets)}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return objectness_scores(logits, self.num_classes)


class SoftmaxCE(Objective):
    """Softmax over C+1 columns, background last (mmdet's default CrossEntropyLoss, ROG's earlier config).

    loss_cls = mean_i -log softmax(z_i)[y_i];  scores = softmax(z)[:, :C] (background dropped).
    """

    name = "softmax_ce"
    extra_columns = 1

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        loss = F.cross_entropy(logits, labels, reduction="sum") / max(logits.shape[0], 1)
        return {"loss_cls": self.loss_weight * loss}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return torch.softmax(logits, dim=1)[:, :self.num_classes]
