"""Category-agnostic ranking losses that the paper compares GAP with (Table 2, Figure 4).

Both flatten the C foreground logits of every RoI into one ranking: the positives are the entries
(RoI labelled c, column c), everything else is negative. Both use the ramp H of `rog.losses.ramp` and
an error-driven update, and share GAP's input convention: logits [R, K >= C], labels [R] in 0..C
(C = background).

- AP loss (Chen et al., CVPR 2019), delta 1.0: precision of positive i is a_i / (a_i + b_i) with
  a_i = 1 + sum_{q != i} H(s_q - s_i) over positives (self counts 1) and b_i = sum_n H(s_n - s_i)
  over negatives. Precision is interpolated: going from the lowest-scored positive up, the running
  maximum (ties broken by RoI order). Value 1 - mean interpolated precision; positive i gets
  -(1 - p*_i) / P, and each negative sum_i (1 - p*_i) H(s_n - s_i) / (b_i P): the error of i spread
  over the negatives above it, in proportion to H.
- RS loss (Oksuz et al., ICCV 2021), delta 0.5: ranking error FP_i / rank_i (self counts H(0) = 0.5)
  plus a sorting error that asks positives with higher IoU to score higher; each positive's sorting
  error is spread over the positives ranked above it with lower IoU.
"""
from __future__ import annotations

import torch
from torch import nn

from rog.losses.gap import error_driven
from rog.losses.inputs import check_finite, check_logits_labels
from rog.losses.pool import ranking_pool, scatter_gradient
from rog.losses.ramp import RampBuckets, ramp, ramp_at_zero


def ap_loss_and_grad(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, delta: float = 1.0,
                     loss_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """AP loss value and error-driven gradient. logits [R, K >= C], labels [R] -> ([], [R, K])."""
    zero = torch.zeros((), dtype=torch.float64, device=logits.device)
    pool = ranking_pool(logits.detach()[:, :num_classes], labels, delta)
    if pool is None:
        return zero, scatter_gradient(None, None, None, logits, num_classes)
    num_pos = pool.pos_scores.numel()
    to_pool = RampBuckets(pool.pos_scores, pool.points, delta, removed=pool.pos_scores)
    among_pos = RampBuckets(pool.pos_scores, pool.pos_scores, delta)
    a = 1.0 + among_pos.sum_over_points() - ramp_at_zero(delta)   # [P] self counts 1
    b = to_pool.sum_over_points()                                 # [P]
    precision = a / (a + b)
    order = torch.sort(pool.pos_scores, stable=True).indices      # ascending score, ties by RoI order
    interpolated = torch.empty_like(precision)
    interpolated[order] = torch.cummax(precision[order], dim=0).values
    error = 1.0 - interpolated
    spread = torch.where(b > 0, error / b.clamp(min=1e-300), torch.zeros_like(b)) * (loss_weight / num_pos)
    point_grad = to_pool.sum_over_centres(spread)
    pos_grad = -error * (loss_weight / num_pos)
    value = loss_weight * error.mean()
    return value, scatter_gradient(pool, point_grad, pos_grad, logits, num_classes)


def rs_loss_and_grad(logits: torch.Tensor, labels: torch.Tensor, ious: torch.Tensor, num_classes: int,
                     delta: float = 0.5, loss_weight: float = 1.0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RS loss: (value, gradient [R, K], mean ranking error, mean sorting error).

    ious: [R] IoU target of each RoI with its ground truth (read at positive RoIs only). The sorting
    term compares positives pairwise ([P, P], P = positive RoIs); negatives are bucketed.
    """
    zero = torch.zeros((), dtype=torch.float64, device=logits.device)
    pool = ranking_pool(logits.detach()[:, :num_classes], labels, delta)
    if pool is None:
        return zero, scatter_gradient(None, None, None, logits, num_classes), zero, zero
    num_pos = pool.pos_scores.numel()
    target = ious.detach()[pool.pos_rows].double()                # [P]
    s = pool.pos_scores
    above = ramp(s[None, :] - s[:, None], delta)                  # [P, P]: row i, H(s_q - s_i)
    rank_pos = above.sum(1)                                       # includes the self pair
    to_pool = RampBuckets(s, pool.points, delta, removed=s)
    false_pos = to_pool.sum_over_points()
    rank = rank_pos + false_pos
    ranking_error = false_pos / rank

    not_worse = (target[None, :] >= target[:, None]).double()     # [P, P]: t_q >= t_i
    current = (above * (1 - target)[None, :]).sum(1) / rank_pos
    in_target_order = above * not_worse
    target_error = (in_target_order * (1 - target)[None, :]).sum(1) / in_target_order.sum(1)
    sorting_error = current - target_error
    missorted = above * (1 - not_worse)                           # ranked above i with lower IoU
    missorted_total = missorted.sum(1)
    share = torch.where(missorted_total > 0, sorting_error / missorted_total.clamp(min=1e-300),
                        torch.zeros_like(sorting_error))

    scale = loss_weight / num_pos
    pos_grad = (-ranking_error - torch.where(missorted_total > 0, sorting_error, 0 * sorting_error)
                + missorted.t() @ share) * scale
    point_grad = to_pool.sum_over_centres(scale / rank)
    value = loss_weight * (ranking_error.mean() + sorting_error.mean())
    return (value, scatter_gradient(pool, point_grad, pos_grad, logits, num_classes),
            ranking_error.mean(), sorting_error.mean())


class APLoss(nn.Module):
    """AP loss (category-agnostic, interpolated, error-driven). forward(logits, labels) -> scalar."""

    needs_ious = False

    def __init__(self, num_classes: int, delta: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        check_finite("APLoss", delta=delta, loss_weight=loss_weight)
        if delta < 0:
            raise ValueError(f"APLoss: delta must be >= 0, got {delta}")
        self.num_classes, self.delta, self.loss_weight = num_classes, float(delta), float(loss_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_logits_labels("APLoss", logits, labels, self.num_classes)
        labels = labels.to(device=logits.device, dtype=torch.long)
        value, grad = ap_loss_and_grad(logits, labels, self.num_classes, self.delta, self.loss_weight)
        return error_driven(logits, value, grad)


class RSLoss(nn.Module):
    """Rank & Sort loss (category-agnostic). forward(logits, labels, ious [R]) -> scalar.

    `last_ranking_error` and `last_sorting_error` keep the two halves of the last call for logging.
    """

    needs_ious = True  # the detector passes each RoI's IoU target (rog.models.roi_heads)

    def __init__(self, num_classes: int, delta: float = 0.5, loss_weight: float = 1.0):
        super().__init__()
        check_finite("RSLoss", delta=delta, loss_weight=loss_weight)
        if delta < 0:
            raise ValueError(f"RSLoss: delta must be >= 0, got {delta}")
        self.num_classes, self.delta, self.loss_weight = num_classes, float(delta), float(loss_weight)
        self.last_ranking_error = torch.zeros((), dtype=torch.float64)
        self.last_sorting_error = torch.zeros((), dtype=torch.float64)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        check_logits_labels("RSLoss", logits, labels, self.num_classes)
        if not isinstance(ious, torch.Tensor) or ious.shape != labels.shape:
            raise ValueError(f"RSLoss: ious must be a tensor of shape {tuple(labels.shape)} like labels, got "
                             f"{tuple(ious.shape) if isinstance(ious, torch.Tensor) else type(ious).__name__}")
        fg = labels < self.num_classes
        fg_ious = ious[fg]
        if fg_ious.numel() and not (bool(torch.isfinite(fg_ious).all()) and float(fg_ious.min()) >= 0
                                    and float(fg_ious.max()) <= 1):
            raise ValueError("RSLoss: ious of positive RoIs must be finite and in [0, 1]")
        labels = labels.to(device=logits.device, dtype=torch.long)
        value, grad, self.last_ranking_error, self.last_sorting_error = rs_loss_and_grad(
            logits, labels, ious.to(logits.device), self.num_classes, self.delta, self.loss_weight)
        return error_driven(logits, value, grad)
