"""Positives and the negative pool shared by the ranking losses (GAP, AP loss, RS loss)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Below this fraction of entries able to reach a positive's ramp, the pool is compacted (nonzero +
# gather); above it, indexing costs more than it saves and the pool is every entry, read in place.
# GAP at 2048 x 1203 on the CPU: compacting breaks even at a quarter (34 ms either way), saves a
# third at a tenth, and costs twice as much at 0.6.
COMPACT_BELOW = 0.25


@dataclass
class RankingPool:
    """The positive entries of a batch and the pool of entries they are ranked against.

    pos_rows, pos_cols, pos_flat: [P] RoI index, class index and flat index (row * C + col) of each
        positive entry (RoI labelled c, column c).
    pos_scores: [P] float64 their logits.
    points: the logits of the pool, float32 or float64 (half logits are widened to float32): the
        [R, C] scores themselves, possibly a strided view (dense pool), or [N] entries (compacted).
        The pool always holds every positive; losses that exclude positives from the negatives remove
        them from their sums (RampBuckets' `removed`).
    point_flat: [N] sorted flat indices of the pool entries, or None when the pool is every entry.
        A compacted pool keeps only entries >= min positive - delta: the others have H = 0 with every
        positive, so they change no sum and get no gradient.
    """

    pos_rows: torch.Tensor
    pos_cols: torch.Tensor
    pos_flat: torch.Tensor
    pos_scores: torch.Tensor
    points: torch.Tensor
    point_flat: torch.Tensor | None

    def positive_positions(self) -> torch.Tensor:
        """[P] flat index of each positive inside `points`."""
        if self.point_flat is None:
            return self.pos_flat
        return torch.searchsorted(self.point_flat, self.pos_flat)


def ranking_pool(scores: torch.Tensor, labels: torch.Tensor, delta: float) -> RankingPool | None:
    """Split [R, C] foreground logits by labels [R] (C = background) into positives and a pool.

    Returns None when the batch has no positive.
    """
    num_classes = scores.shape[1]
    pos_rows = (labels < num_classes).nonzero().squeeze(1)
    if pos_rows.numel() == 0:
        return None
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()  # half precision: exact in float32, and the grid needs its range
    pos_cols = labels[pos_rows]
    pos_flat = pos_rows * num_classes + pos_cols
    pos_scores = scores[pos_rows, pos_cols].double()
    threshold = float(pos_scores.min()) - delta
    # the margin only admits a few more entries (float32 comparison), which changes no sum
    threshold -= 1e-6 * (1.0 + abs(threshold))
    # decide on a sample of rows: compacting only pays when most entries fall below the threshold
    sample = scores[:: max(1, scores.shape[0] // 64)]
    if float((sample >= threshold).double().mean()) >= COMPACT_BELOW:
        return RankingPool(pos_rows, pos_cols, pos_flat, pos_scores, scores, None)
    point_flat = (scores >= threshold).view(-1).nonzero().squeeze(1)
    points = torch.take(scores, point_flat)  # in place, whatever the view's strides
    return RankingPool(pos_rows, pos_cols, pos_flat, pos_scores, points, point_flat)


def scatter_gradient(pool: RankingPool | None, point_grad: torch.Tensor | None, pos_grad: torch.Tensor | None,
                     like: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Assemble the [R, K] gradient in like's dtype: pool entries, then positives (overwritten).

    point_grad: float64 for the pool's points, in their shape; pos_grad: [P] float64, the positives' whole
    gradient; like: the [R, K] logits. Columns beyond C get zero.
    """
    grad = torch.zeros_like(like, memory_format=torch.contiguous_format)
    if pool is None:
        return grad
    rows = like.shape[0]
    fg = grad[:, :num_classes]
    if pool.point_flat is None:
        fg.copy_(point_grad.reshape(rows, num_classes))
    else:
        # flat index in [R, C] -> in the [R, K] gradient, written in place
        flat = pool.point_flat + torch.div(pool.point_flat, num_classes, rounding_mode="floor") * (
            like.shape[1] - num_classes)
        grad.view(-1)[flat] = point_grad.to(like.dtype)
    fg[pool.pos_rows, pool.pos_cols] = pos_grad.to(like.dtype)
    return grad
