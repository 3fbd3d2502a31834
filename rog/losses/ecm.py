"""Effective class-margin loss (ECM, Cho & Kraehenbuehl, ICCV 2023), as in janghyuncho/ECM-Loss.

C+1 binary problems (background last). With training *instance* counts n_c and the background count
n_bg = fg_bg_ratio x sum_c n_c appended (n has C+1 entries), n+_c = n_c and n-_c = sum(n) - n_c:

    m+_c = log((n+^(1/4) + n-^(1/4)) / n-^(1/4)),   m-_c = log((n+^(1/4) + n-^(1/4)) / n+^(1/4))
    p+_ic = e^(z + m+) / (e^(z + m+) + e^(-z + m-)) = sigmoid(2 z + m+ - m-)
    w_c = a_c log((1 + a_c) / a_c),  a_c = n-_c / n+_c
    loss_cls = sum_{i,c} w_c BCE(p+_ic, t_ic) / R

The x2 and the margins act in training only: scores are sigmoid(z_c) (1 - sigmoid(z_bg)) of the raw
logits. ECM's configs use NormedLinear (temperature 20). Counts below 1 are clamped to 1 (LVIS v1 has
none) so that the margins stay finite.
"""
from __future__ import annotations

import torch

from rog.losses.counts import CategoryCounts
from rog.losses.objective_base import (Objective, SigmoidPriorInit, objectness_scores, one_hot,
                                       require_counts, weighted_bce)


class ECMLoss(SigmoidPriorInit, Objective):
    """fg_bg_ratio 6.3313 (the repo's 'empirical fg-bg ratio from Mask-RCNN')."""

    name = "ecm"
    extra_columns = 1

    def __init__(self, num_classes: int, class_counts: CategoryCounts | None = None,
                 fg_bg_ratio: float = 6.3313, loss_weight: float = 1.0, prior_prob: float = 0.01,
                 normed_linear: bool = True, temperature: float = 20.0):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        counts = require_counts(self.name, class_counts, num_classes, "instance counts")
        self.fg_bg_ratio = float(fg_bg_ratio)
        self.prior_prob = float(prior_prob)
        fg = counts.instance_count.double().clamp(min=1)
        self.register_buffer("counts", torch.cat([fg, fg.sum()[None] * self.fg_bg_ratio]))

    def margins(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(m+, m-, w): [C+1] each, from the counts buffer."""
        n_pos = self.counts
        n_neg = self.counts.sum() - self.counts
        root_pos, root_neg = n_pos ** 0.25, n_neg ** 0.25
        m_pos = torch.log((root_pos + root_neg) / root_neg)
        m_neg = torch.log((root_pos + root_neg) / root_pos)
        a = n_neg / n_pos
        return m_pos, m_neg, a * torch.log((1 + a) / a)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        m_pos, m_neg, weight = (v.to(logits.dtype) for v in self.margins())
        targets = one_hot(labels, self.num_outputs, logits.dtype)
        margin_logits = (logits + m_pos) - (-logits + m_neg)
        return {"loss_cls": self.loss_weight * weighted_bce(margin_logits, targets, weight[None, :])}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        return objectness_scores(logits, self.num_classes)
