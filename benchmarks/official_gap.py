"""A straightforward re-implementation of the official GAP algorithm, for benchmarking only.

Written from the description in shared/spec/peers.md section 1.3 (not from the official code): loop
over the classes present, then over each class's positives in ascending score order, comparing each
positive with every kept negative, O(P x N) per class. Its gradient is lambda x Eq. 11 with the
official self pair (rank_offset 0.5) and Excl.FG; `rog.losses.GAPLoss` must reproduce it.
"""
from __future__ import annotations

import torch


def ramp(x: torch.Tensor, delta: float) -> torch.Tensor:
    return (x / (2 * delta) + 0.5).clamp(0, 1) if delta > 0 else (x >= 0).to(x.dtype)


def official_gap_grad(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, omega: torch.Tensor,
                      delta: float = 0.5, loss_weight: float = 1.0, eps: float = 1e-10) -> torch.Tensor:
    """[R, K] gradient of the official algorithm (columns beyond C are zero)."""
    preds = logits.detach()[:, :num_classes].reshape(-1)
    targets = torch.zeros(labels.shape[0], num_classes + 1, dtype=torch.bool, device=logits.device)
    targets[torch.arange(labels.shape[0], device=logits.device), labels] = True
    targets = targets[:, :num_classes].reshape(-1)
    grad = torch.zeros_like(preds)
    present = torch.unique(labels[labels < num_classes])
    for m in present.tolist():
        column = torch.zeros(labels.shape[0], num_classes, dtype=torch.bool, device=logits.device)
        column[:, m] = True
        pos_index = (targets & column.reshape(-1)).nonzero().squeeze(1)
        pos_scores = preds[pos_index]
        threshold = pos_scores.min() - delta
        neg_index = ((~targets) & (preds >= threshold)).nonzero().squeeze(1)
        neg_scores = preds[neg_index]
        pos_grad = torch.zeros_like(pos_scores)
        neg_grad = torch.zeros_like(neg_scores)
        for k in torch.argsort(pos_scores).tolist():
            rank_pos = ramp(pos_scores - pos_scores[k], delta).sum()  # self pair counts H(0) = 0.5
            relation = ramp(neg_scores - pos_scores[k], delta)
            false_pos = relation.sum()
            rank = rank_pos + false_pos
            if false_pos > eps:
                pos_grad[k] -= false_pos / rank
                neg_grad += relation / rank
        scale = loss_weight * omega[m] / (pos_index.numel() * present.numel())
        grad.index_add_(0, pos_index, pos_grad * scale)
        grad.index_add_(0, neg_index, neg_grad * scale)
    out = torch.zeros_like(logits.detach())
    out[:, :num_classes] = grad.view(labels.shape[0], num_classes)
    return out
