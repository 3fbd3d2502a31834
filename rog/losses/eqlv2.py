"""Equalization loss v2 (Tan et al., CVPR 2021), as in tztztztztz/eqlv2's `EQLv2`.

C+1 sigmoid outputs, the last the objectness column (target 1 on background RoIs, weight 1).
From the accumulated gradient ratio g_j = pos_grad_j / (neg_grad_j + 1e-10) of class j < C:

    q_j = 1 / (1 + exp(-gamma (g_j - mu)))       negative weight
    r_j = 1 + alpha (1 - q_j)                    positive weight
    w_ij = r_j t_ij + q_j (1 - t_ij)
    loss_cls = sum_{i,j} w_ij BCE(z_ij, t_ij) / R

The weights use the statistics before the batch. After the loss, the weighted gradient magnitudes
w_ij |sigmoid(z_ij) - t_ij| (detached) are summed over RoIs into pos_grad (t = 1) and neg_grad (t = 0),
background column excluded, summed across processes (all-reduce SUM, when torch.distributed is
initialised and sync_stats is set), and added to the buffers: cumulative, never decayed. pos_neg
starts at 100, so the first weights are 1. Scores: sigmoid(z_c) (1 - sigmoid(z_bg)) (test_with_obj),
else sigmoid(z_c).

Deviation: the accumulators are float64 (the official code: float32) so that a long run does not
lose small per-batch increments.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from rog.losses.objective_base import Objective, SigmoidPriorInit, objectness_scores, one_hot, weighted_bce


class EQLv2(SigmoidPriorInit, Objective):
    """gamma 12, mu 0.8, alpha 4 (LVIS v1); sync_stats=False keeps per-process statistics."""

    name = "eqlv2"
    extra_columns = 1

    def __init__(self, num_classes: int, gamma: float = 12.0, mu: float = 0.8, alpha: float = 4.0,
                 init_pos_neg: float = 100.0, test_with_obj: bool = True, sync_stats: bool = True,
                 loss_weight: float = 1.0, prior_prob: float = 0.001, normed_linear: bool = False,
                 temperature: float = 20.0):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        self.gamma, self.mu, self.alpha = float(gamma), float(mu), float(alpha)
        self.test_with_obj = bool(test_with_obj)
        self.sync_stats = bool(sync_stats)
        self.prior_prob = float(prior_prob)
        self.register_buffer("pos_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("neg_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("pos_neg", torch.full((num_classes,), float(init_pos_neg), dtype=torch.float64))

    def class_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, q): [C+1] positive and negative weights from the current statistics; 1 for background."""
        q = torch.sigmoid(self.gamma * (self.pos_neg - self.mu))
        r = 1 + self.alpha * (1 - q)
        one = q.new_ones(1)
        return torch.cat([r, one]), torch.cat([q, one])

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        targets = one_hot(labels, self.num_outputs, logits.dtype)
        pos_w, neg_w = (w.to(logits.dtype) for w in self.class_weights())
        weights = pos_w * targets + neg_w * (1 - targets)
        loss = weighted_bce(logits, targets, weights)
        if self.training:
            self.collect_grad(logits.detach(), targets, weights)
        return {"loss_cls": self.loss_weight * loss}

    @torch.no_grad()
    def collect_grad(self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> None:
        """Add this batch's weighted |dBCE/dz| per class ([R, C+1] inputs) to pos_grad and neg_grad."""
        grad = (torch.sigmoid(logits) - targets).abs() * weights
        C = self.num_classes
        batch = torch.stack([(grad * targets).sum(0)[:C], (grad * (1 - targets)).sum(0)[:C]]).double()
        if self.sync_stats and dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch, op=dist.ReduceOp.SUM)
        self.pos_grad += batch[0]
        self.neg_grad += batch[1]
        self.pos_neg.copy_(self.pos_grad / (self.neg_grad + 1e-10))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        if self.test_with_obj:
            return objectness_scores(logits, self.num_classes)
        return torch.sigmoid(logits[:, :self.num_classes])
