"""Brute-force readings of the ranking losses, written from the equations with explicit loops.

Slow (Python loops over classes, positives and negatives) and meant for tiny tensors only. They share
no code with rog.losses: a mistake there cannot hide here.
"""
from __future__ import annotations

import torch


def H(x: float, delta: float) -> float:
    """Eq. 5: the smoothed step of a score difference x = s_j - s_i."""
    if delta == 0:
        return 1.0 if x >= 0 else 0.0
    if x < -delta:
        return 0.0
    if x > delta:
        return 1.0
    return x / (2 * delta) + 0.5


def omega_oracle(counts: list[float], gamma: float) -> list[float]:
    """Eq. 9, counts below 1 counted as 1."""
    inv = [(1.0 / max(n, 1.0)) ** gamma for n in counts]
    total = sum(inv)
    return [w / total * len(counts) for w in inv]


def gap_oracle(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, omega: list[float],
               delta: float, exclude_fg: bool, rank_offset: float, loss_weight: float):
    """Value (lambda x Eq. 8) and gradient (lambda x Eq. 11) by brute force. Returns (float, [R, K] float64)."""
    z = logits.detach().double()
    y = [int(v) for v in labels]
    rows, cols = z.shape
    grad = torch.zeros(rows, cols, dtype=torch.float64)
    positives = {(r, y[r]) for r in range(rows) if y[r] < num_classes}
    present = sorted({y[r] for r in range(rows) if y[r] < num_classes})
    value = 0.0
    for m in present:
        class_pos = [r for r in range(rows) if y[r] == m]
        if exclude_fg:
            negatives = [(r, c) for r in range(rows) for c in range(num_classes) if (r, c) not in positives]
        else:
            negatives = [(r, c) for r in range(rows) for c in range(num_classes) if not (y[r] == m and c == m)]
        weight = loss_weight * omega[m] / (len(present) * len(class_pos))
        for i in class_pos:
            s_i = float(z[i, m])
            rank = rank_offset + sum(H(float(z[j, m]) - s_i, delta) for j in class_pos if j != i)
            false_pos = sum(H(float(z[r, c]) - s_i, delta) for r, c in negatives)
            rank += false_pos
            value += weight * false_pos / rank
            grad[i, m] -= weight * false_pos / rank
            for r, c in negatives:
                grad[r, c] += weight * H(float(z[r, c]) - s_i, delta) / rank
    return value, grad


def _flat_entries(z: torch.Tensor, y: list[int], num_classes: int):
    rows = z.shape[0]
    positives = [(r, y[r]) for r in range(rows) if y[r] < num_classes]
    pos_set = set(positives)
    negatives = [(r, c) for r in range(rows) for c in range(num_classes) if (r, c) not in pos_set]
    return positives, negatives


def ap_oracle(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, delta: float, loss_weight: float):
    """AP loss (Chen et al.): category-agnostic, interpolated precision, error-driven."""
    z = logits.detach().double()
    y = [int(v) for v in labels]
    positives, negatives = _flat_entries(z, y, num_classes)
    grad = torch.zeros_like(z)
    if not positives:
        return 0.0, grad
    score = {e: float(z[e]) for e in positives + negatives}
    # ascending score; equal scores in RoI order
    order = sorted(range(len(positives)), key=lambda k: (score[positives[k]], k))
    best = 0.0
    total_error = 0.0
    for k in order:
        i = positives[k]
        a = 1.0 + sum(H(score[q] - score[i], delta) for q in positives if q != i)
        b = sum(H(score[n] - score[i], delta) for n in negatives)
        precision = a / (a + b)
        best = max(best, precision)
        error = 1.0 - best
        total_error += error
        grad[i] -= error / len(positives)
        if b > 0:
            for n in negatives:
                grad[n] += error * H(score[n] - score[i], delta) / b / len(positives)
    return loss_weight * total_error / len(positives), loss_weight * grad


def rs_oracle(logits: torch.Tensor, labels: torch.Tensor, ious: torch.Tensor, num_classes: int, delta: float,
              loss_weight: float):
    """Rank & Sort loss (Oksuz et al.): ranking error plus sorting error, identity updates."""
    z = logits.detach().double()
    y = [int(v) for v in labels]
    positives, negatives = _flat_entries(z, y, num_classes)
    grad = torch.zeros_like(z)
    if not positives:
        return 0.0, grad
    score = {e: float(z[e]) for e in positives + negatives}
    iou = {e: float(ious[e[0]]) for e in positives}
    count = len(positives)
    ranking_total = sorting_total = 0.0
    for i in positives:
        h_pos = {q: H(score[q] - score[i], delta) for q in positives}          # self included
        rank_pos = sum(h_pos.values())
        false_pos = sum(H(score[n] - score[i], delta) for n in negatives)
        rank = rank_pos + false_pos
        ranking_error = false_pos / rank
        ranking_total += ranking_error
        if false_pos > 0:
            grad[i] -= ranking_error / count
            for n in negatives:
                grad[n] += H(score[n] - score[i], delta) / rank / count
        current = sum(h_pos[q] * (1 - iou[q]) for q in positives) / rank_pos
        target_set = [q for q in positives if iou[q] >= iou[i]]
        target = (sum(h_pos[q] * (1 - iou[q]) for q in target_set) / sum(h_pos[q] for q in target_set))
        sorting_error = current - target
        sorting_total += sorting_error
        missorted = {q: h_pos[q] for q in positives if iou[q] < iou[i]}
        denominator = sum(missorted.values())
        if denominator > 0:
            grad[i] -= sorting_error / count
            for q, h in missorted.items():
                grad[q] += sorting_error * h / denominator / count
    value = (ranking_total + sorting_total) / count
    return loss_weight * value, loss_weight * grad
