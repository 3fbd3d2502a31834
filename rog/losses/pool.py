"""Positives and the pruned negative pool shared by the ranking losses (GAP, AP loss, RS loss)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RankingPool:
    """The positive entries of a batch and the pool of entries they are ranked against.

    pos_rows, pos_cols, pos_flat: [P] RoI index, class index and flat index (row * C + col) of each
        positive entry (RoI labelled c, column c).
    pos_scores: [P] float64 their logits.
    point_flat: [N] sorted flat indices of the pool entries; points: [N] float64 their logits.
    The pool keeps only entries that can reach a positive's ramp (>= min positive - delta): the others
    have H = 0 with every positive and get no gradient.
    """

    pos_rows: torch.Tensor
    pos_cols: torch.Tensor
    pos_flat: torch.Tensor
    pos_scores: torch.Tensor
    point_flat: torch.Tensor
    points: torch.Tensor


def ranking_pool(scores: torch.Tensor, labels: torch.Tensor, delta: float,
                 include_positives: bool = False) -> RankingPool | None:
    """Split [R, C] foreground logits by labels [R] (C = background) into positives and a pool.

    include_positives: keep the positive entries in the pool too (GAP without Excl.FG).
    Returns None when the batch has no positive.
    """
    num_classes = scores.shape[1]
    pos_rows = (labels < num_classes).nonzero().squeeze(1)
    if pos_rows.numel() == 0:
        return None
    pos_cols = labels[pos_rows]
    pos_scores = scores[pos_rows, pos_cols].double()
    threshold = float(pos_scores.min()) - delta
    # the margin only admits a few more entries (float32 comparison), which changes no sum
    keep = scores >= threshold - 1e-6 * (1.0 + abs(threshold))
    if not include_positives:
        keep[pos_rows, pos_cols] = False
    point_flat = keep.view(-1).nonzero().squeeze(1)
    return RankingPool(pos_rows, pos_cols, pos_rows * num_classes + pos_cols, pos_scores,
                       point_flat, scores.reshape(-1)[point_flat].double())


def scatter_gradient(pool: RankingPool | None, point_grad: torch.Tensor | None, pos_grad: torch.Tensor | None,
                     like: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Assemble the [R, K] gradient: pool entries, then positives (added), zero beyond column C.

    point_grad: [N] float64 or None; pos_grad: [P] float64 or None; like: the [R, K] logits.
    """
    grad = torch.zeros(like.shape[0], num_classes, dtype=torch.float64, device=like.device)
    if pool is not None:
        flat = grad.view(-1)
        if point_grad is not None:
            flat[pool.point_flat] = point_grad
        if pos_grad is not None:
            flat.index_add_(0, pool.pos_flat, pos_grad)
    grad = grad.to(like.dtype)
    extra = like.shape[1] - num_classes
    if extra:
        grad = torch.cat([grad, grad.new_zeros(like.shape[0], extra)], dim=1)
    return grad
