"""Seesaw loss (Wang et al., CVPR 2021), as in mmdet 2.25's `SeesawLoss` (ROG's Table 5 head).

C+2 outputs: [C class logits | objectness (fg, bg)].

    loss_cls_objectness = sum_i CE(softmax(z_obj_i), 0 if foreground else 1) / R
    loss_cls_classes    = sum_{i foreground} CE(z_i + log S_i, y_i) / R       (R = all RoIs)

with, for the ground-truth class i and another class j (S_ii = 1):
    mitigation    M_ij = (N_j / N_i)^p if N_j < N_i else 1       N = cum_samples, clamped to >= 1
    compensation  C_ij = (s_j / s_i)^q if s_j / s_i > 1 else 1   s = softmax over the C class logits,
                                                                 detached; s_i clamped to >= eps
    S_ij = M_ij C_ij

cum_samples [C+1] counts the sampled RoIs' labels (background at index C, unused), increased by the
batch before the loss: cumulative, per process (never synchronised), saved in the state_dict.
Scores: softmax_C(z_cls)_c x softmax(z_obj)[fg]. mmdet pairs it with NormedLinear(temperature 20).

Deviation: cum_samples is float64 (mmdet: float32, whose integers stop being exact past 2^24 RoIs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rog.losses.objective_base import Objective


class SeesawLoss(Objective):
    """p 0.8, q 2.0, eps 1e-2; normed_linear=True (temperature 20) as in mmdet's Seesaw configs."""

    name = "seesaw"
    extra_columns = 2

    def __init__(self, num_classes: int, p: float = 0.8, q: float = 2.0, eps: float = 1e-2,
                 loss_weight: float = 1.0, normed_linear: bool = True, temperature: float = 20.0):
        super().__init__(num_classes, loss_weight, normed_linear, temperature)
        self.p, self.q, self.eps = float(p), float(q), float(eps)
        self.register_buffer("cum_samples", torch.zeros(num_classes + 1, dtype=torch.float64))

    def log_seesaw_factors(self, class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log S for foreground RoIs: class_logits [P, C], labels [P] in 0..C-1 -> [P, C], 0 at the label."""
        log_s = torch.zeros_like(class_logits)
        if self.p > 0:
            counts = self.cum_samples[:self.num_classes].clamp(min=1)
            ratio = (counts[None, :] / counts[labels][:, None]).to(class_logits.dtype)
            log_s = log_s + torch.where(ratio < 1, self.p * ratio.log(), torch.zeros_like(ratio))
        if self.q > 0:
            probs = torch.softmax(class_logits.detach(), dim=1)
            own = probs.gather(1, labels[:, None]).clamp(min=self.eps)
            ratio = probs / own
            log_s = log_s + torch.where(ratio > 1, self.q * ratio.log(), torch.zeros_like(ratio))
        return log_s.scatter(1, labels[:, None], 0.0)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = self.check(logits, labels)
        C, num_rois = self.num_classes, max(logits.shape[0], 1)
        if self.training:
            self.cum_samples += torch.bincount(labels, minlength=C + 1).to(self.cum_samples)
        is_bg = labels == C
        objectness = F.cross_entropy(logits[:, C:], is_bg.long(), reduction="sum") / num_rois
        fg_logits, fg_labels = logits[~is_bg, :C], labels[~is_bg]
        adjusted = fg_logits + self.log_seesaw_factors(fg_logits, fg_labels)
        classes = F.cross_entropy(adjusted, fg_labels, reduction="sum") / num_rois
        return {"loss_cls_objectness": self.loss_weight * objectness,
                "loss_cls_classes": self.loss_weight * classes}

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_columns(logits)
        C = self.num_classes
        return torch.softmax(logits[:, :C], dim=1) * torch.softmax(logits[:, C:], dim=1)[:, :1]
