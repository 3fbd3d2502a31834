"""A straightforward re-implementation of the official GAP algorithm: the reference GAPLoss is checked
and timed against (benchmarks/gap_loss.py, notebooks/gap_loss.ipynb), with LVIS-sized batches.

The official algorithm loops over the classes present, then over each class's positives in ascending
score order, comparing each positive with every kept negative: O(P x N) per class. Its gradient is
lambda x Eq. 11 with the official self pair (rank_offset 0.5) and Excl.FG.
"""
from __future__ import annotations

import torch

from rog.losses import CategoryCounts, GAPLoss


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


NUM_CLASSES = 1203


def lvis_like_batch(rows: int, device: str, seed: int = 0, classes_in_batch: int = 40):
    """[R, C+1] float32 logits and [R] labels: 25 % positives over `classes_in_batch` classes."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, NUM_CLASSES + 1, generator=g) * 1.5 - 4.0
    labels = torch.full((rows,), NUM_CLASSES)
    num_pos = rows // 4
    batch_classes = torch.randperm(NUM_CLASSES, generator=g)[:classes_in_batch]
    # a long tail inside the batch too: class k drawn with weight 1 / (k + 1)
    weights = 1.0 / torch.arange(1, classes_in_batch + 1, dtype=torch.float)
    pos_labels = batch_classes[torch.multinomial(weights, num_pos, replacement=True, generator=g)]
    pos_rows = torch.randperm(rows, generator=g)[:num_pos]
    labels[pos_rows] = pos_labels
    logits[pos_rows, pos_labels] = torch.randn(num_pos, generator=g) * 2.0 - 1.0
    return logits.to(device), labels.to(device)


def batch_counts(labels: torch.Tensor) -> torch.Tensor:
    """[C] positive RoIs per class: the online counts after this one batch."""
    return torch.bincount(labels[labels < NUM_CLASSES], minlength=NUM_CLASSES).double()


def omega_for(labels: torch.Tensor) -> torch.Tensor:
    return GAPLoss(NUM_CLASSES, weighting="dataset", class_counts=CategoryCounts.from_instance_counts(batch_counts(labels))).to(labels.device).omega()


def ours(logits, labels, omega):
    # fixed counts = this batch's, so omega equals the reference's `omega_for(labels)`
    gap = GAPLoss(NUM_CLASSES, weighting="dataset", class_counts=CategoryCounts.from_instance_counts(batch_counts(labels))).to(logits.device)
    z = logits.clone().requires_grad_(True)
    gap(z, labels).backward()
    return z.grad


def reference(logits, labels, omega):
    return official_gap_grad(logits, labels, NUM_CLASSES, omega)
