"""No object-level loss: C sigmoid logits trained by a ranking loss alone (Table 2, "N/A" rows).

AP loss, RS loss and GAP used alone score each class with sigmoid(z_c) and have no background column
(peers.md section 8): `loss` returns no term, the detector's ranking term supplies the gradient.
"""
from __future__ import annotations

import torch

from rog.losses.objective_base import Objective, SigmoidPriorInit


class RankingOnly(SigmoidPriorInit, Objective):
    """C columns; loss = {} ; scores = sigmoid(z_c); classifier bias -log(99) (prior 0.01, as AP loss)."""

    name = "none"
    extra_columns = 0

    def __init__(self, num_classes: int, prior_prob: float = 0.01):
        super().__init__(num_classes)
        self.prior_prob = float(prior_prob)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check(logits, labels)
        return {}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return torch.sigmoid(logits)
