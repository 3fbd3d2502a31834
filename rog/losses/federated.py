"""Federated loss (Zhou et al., CenterNet2), as in detectron2's FastRCNNOutputLayers (use_fed_loss).

C+1 outputs; only the C foreground logits are trained, the background column gets no gradient and is
dropped at inference. Each call picks a class subset S:

    S = unique(labels)  (the background label C included, as detectron2 does)
    if |S| < num_fed_classes: add num_fed_classes - |S| classes drawn without replacement, with
        probability proportional to image_count^freq_weight_power, never a class already in S nor
        the background
    loss_cls = sum_i sum_{c in S, c < C} BCE(z_ic, t_ic) / R

Scores: sigmoid(z_c) for c < C. The draw uses `generator` (if given) or the global RNG.

Deviation: when fewer classes with nonzero probability remain than needed (only when C is small),
all of them are taken instead of raising as torch.multinomial would.
"""
from __future__ import annotations

import torch

from rog.losses.counts import CategoryCounts
from rog.losses.objective_base import Objective, SigmoidPriorInit, one_hot, require_counts, weighted_bce


class FederatedLoss(SigmoidPriorInit, Objective):
    """num_fed_classes 50, freq_weight_power 0.5 (detectron2's FED_LOSS_* defaults)."""

    name = "federated"
    extra_columns = 1

    def __init__(self, num_classes: int, class_counts: CategoryCounts | None = None,
                 num_fed_classes: int = 50, freq_weight_power: float = 0.5, loss_weight: float = 1.0,
                 prior_prob: float = 0.01, normed_linear: bool = False, temperature: float = 20.0,
                 generator: torch.Generator | None = None):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        counts = require_counts(self.name, class_counts, num_classes, "image counts")
        self.num_fed_classes = int(num_fed_classes)
        self.freq_weight_power = float(freq_weight_power)
        self.prior_prob = float(prior_prob)
        self.generator = generator
        self.register_buffer("freq_weight", counts.image_count.double() ** self.freq_weight_power)

    def fed_classes(self, labels: torch.Tensor) -> torch.Tensor:
        """[C] bool mask of the classes trained in this batch (labels [R])."""
        present = torch.unique(labels)
        prob = torch.cat([self.freq_weight, self.freq_weight.new_zeros(1)])   # background never drawn
        prob[present] = 0
        needed = min(self.num_fed_classes - present.numel(), int((prob > 0).sum()))
        chosen = present
        if needed > 0:
            device = self.generator.device if self.generator is not None else prob.device
            drawn = torch.multinomial(prob.to(device), needed, replacement=False, generator=self.generator)
            chosen = torch.cat([present, drawn.to(present.device)])
        mask = torch.zeros(self.num_classes + 1, dtype=torch.bool, device=labels.device)
        mask[chosen] = True
        return mask[:self.num_classes]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        C = self.num_classes
        targets = one_hot(labels, C + 1, logits.dtype)[:, :C]
        weights = self.fed_classes(labels).to(logits.dtype)[None, :]
        return {"loss_cls": self.loss_weight * weighted_bce(logits[:, :C], targets, weights)}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return torch.sigmoid(logits[:, :self.num_classes])
