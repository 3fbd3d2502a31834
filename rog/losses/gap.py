"""Generalized average precision (GAP) loss, paper Eqs. 5-11, exact and without a [P, N] matrix.

For each class m present in the batch, with positives P(m) (RoIs labelled m, column m) and negatives N
(every (RoI, class) logit that is not a positive of any class; with exclude_fg=False, N(m) also holds
the positives of the other classes):

    R(i)   = rank_offset + sum_{j in P(m), j != i} H(i, j) + FP(i),   FP(i) = sum_{n in N} H(i, n)
    L_gap  = 1/|M| sum_m  omega_m / |P(m)|  sum_{i in P(m)} FP(i) / R(i)                   (Eq. 8)
    omega_m = C (1/|P(m)|)^gamma / sum_k (1/|P(k)|)^gamma                                   (Eq. 9)

with H(i, j) = clamp((s_j - s_i) / (2 delta) + 1/2, 0, 1) (Eq. 5). The gradient is the error-driven
update of Eq. 11: a positive i of class m receives -c_m FP(i)/R(i), a negative n receives
sum_m c_m sum_{i in P(m)} H(i, n)/R(i), where c_m = lambda omega_m / (|M| |P(m)|).

rank_offset: the official code counts a positive's comparison with itself as H(0) = 0.5 (R = 0.5 +
sum_{j != i} H); the paper's Eqs. 6-7 write 1 + sum_{j != i} H. The default is 0.5, the official code,
because the paper's numbers were produced by it; 1.0 gives the paper's equations.

Differences from the official code, on purpose: the returned value is lambda x Eq. 8 (the official
code logs the unweighted mean error and applies lambda x omega to the gradient only; that number is
kept as `last_ranking_error`); delta is configurable; counts can be summed across processes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rog.losses.counts import CategoryCounts
from rog.losses.inputs import check_finite, check_logits_labels
from rog.losses.pool import RankingPool, ranking_pool, scatter_gradient
from rog.losses.ramp import GroupedRampBuckets, RampBuckets, evaluate_tables, ramp_at_zero

WEIGHTINGS = ("online", "dataset", "none")


def class_weights(counts: torch.Tensor, gamma: float) -> torch.Tensor:
    """omega of Eq. 9 for every class: [C] counts -> [C] weights summing to C.

    Counts below 1 (classes never seen) count as 1, as in the official code. Computed as a softmax of
    -gamma log n so that large gamma or counts cannot underflow.
    """
    log_counts = counts.double().clamp(min=1.0).log()
    return counts.numel() * torch.softmax(-gamma * log_counts, dim=0)


@dataclass
class GapBackward:
    """What the gradient of one GAP call needs, kept from its forward.

    pool: the positives and the pool (pool.points are a view of the logits when the pool is dense);
    to_pool: the pool's buckets among the positives' 2P kinks, each point's bucket kept;
    tables: per-bucket (intercept, slope), float64 [2P + 1] each (slope None for the step): the
        gradient of a pool entry is intercept + score x slope of its bucket (Eq. 11);
    pos_grad: [P] float64, the positives' whole gradient;
    grad: the [R, K] gradient tensor, allocated in forward when the dense pool's buckets are kept in
        its memory, else None.
    """

    pool: RankingPool
    to_pool: RampBuckets
    tables: tuple[torch.Tensor, torch.Tensor | None]
    pos_grad: torch.Tensor
    grad: torch.Tensor | None


def _bucket_store(logits: torch.Tensor, pool: RankingPool, num_classes: int
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(gradient tensor, where to keep the dense pool's buckets in its memory) or (None, None).

    The gradient is written once, in backward, over the very entries whose buckets it reads: keeping
    the buckets there saves a second [R, C] tensor (its memory and, on the CPU, its page faults).
    """
    as_int = {4: torch.int32, 8: torch.int64}.get(logits.element_size())
    if pool.point_flat is not None or as_int is None or not logits.dtype.is_floating_point:
        return None, None
    grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
    return grad, grad.view(as_int)[:, :num_classes]


def gap_forward(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, omega: torch.Tensor,
                delta: float = 0.5, exclude_fg: bool = True, rank_offset: float = 0.5, loss_weight: float = 1.0,
                for_backward: bool = True) -> tuple[torch.Tensor, torch.Tensor, GapBackward | None]:
    """GAP value (lambda x Eq. 8), unweighted mean error, and what `gap_gradient` needs.

    logits: [R, K], K >= C; labels: [R] in 0..C (C = background); omega: [C] class weights. Values are
    float64 scalars; the third item is None without a positive or with for_backward=False. The only
    pass over the [R, C] scores bucketizes them and sums each bucket; everything else is over the P
    positives or the 2P + 1 buckets. Inputs are assumed valid.
    """
    zero = torch.zeros((), dtype=torch.float64, device=logits.device)
    pool = ranking_pool(logits.detach()[:, :num_classes], labels, delta)
    if pool is None:
        return zero, zero, None
    classes, pos_group, class_sizes = torch.unique(pool.pos_cols, return_inverse=True, return_counts=True)

    grad, store = _bucket_store(logits, pool, num_classes) if for_backward else (None, False)
    # with Excl.FG every positive leaves the pool; without it, only class m's own (via same_class)
    to_pool = RampBuckets(pool.pos_scores, pool.points, delta, removed=pool.pos_scores if exclude_fg else None,
                          bucket_store=store)
    within_class = GroupedRampBuckets(pool.pos_scores, pos_group, delta)
    above_in_pool = to_pool.sum_over_points()                   # [P] sum over the pool of H(i, n)
    same_class = within_class.sum_over_points()                 # [P] includes the self pair H(0)
    false_pos = above_in_pool if exclude_fg else above_in_pool - same_class
    rank = rank_offset + (same_class - ramp_at_zero(delta)) + false_pos
    error = false_pos / rank                                    # [P] sum_j L_ij

    coef = (loss_weight * omega.double()[classes] / (classes.numel() * class_sizes))[pos_group]
    value = (coef * error).sum()
    ranking_error = (error / class_sizes[pos_group]).sum() / classes.numel()
    if not for_backward:
        return value, ranking_error, None

    spread = coef / rank
    tables = to_pool.centre_tables(spread)                      # Eq. 11, negatives, per bucket
    pos_grad = -coef * error                                    # [P] Eq. 11, positives
    if not exclude_fg:
        # a positive of class m is also a negative of every other class present
        pos_bucket = to_pool.buckets_at(pool.positive_positions())
        as_negative = evaluate_tables(tables, pos_bucket, pool.pos_scores) - within_class.sum_over_centres(spread)
        pos_grad = pos_grad + as_negative
    return value, ranking_error, GapBackward(pool, to_pool, tables, pos_grad, grad)


def gap_gradient(saved: GapBackward | None, like: torch.Tensor, num_classes: int,
                 grad_output: torch.Tensor | float = 1.0) -> torch.Tensor:
    """[R, K] gradient in like's dtype (lambda x Eq. 11 times grad_output); columns beyond C are zero.

    One pass over the pool: each entry's kept bucket picks its line (intercept + score x slope).
    """
    if saved is None:
        return torch.zeros_like(like, memory_format=torch.contiguous_format)
    if isinstance(grad_output, torch.Tensor):
        grad_output = grad_output.to(torch.float64)
    intercept, slope = saved.tables
    tables = (intercept * grad_output, None if slope is None else slope * grad_output)
    pos_grad = saved.pos_grad * grad_output
    pool, to_pool = saved.pool, saved.to_pool
    if saved.grad is None:
        if to_pool.bucket_store is None:  # a second backward through the same graph (retain_graph)
            to_pool.keep_buckets()
        return scatter_gradient(pool, to_pool.at_points(tables), pos_grad, like, num_classes)
    grad, saved.grad = saved.grad, None
    grad[:, num_classes:].zero_()
    to_pool.at_points(tables, out=grad[:, :num_classes])        # overwrites the buckets it reads
    to_pool.bucket_store = None
    grad[pool.pos_rows, pool.pos_cols] = pos_grad.to(grad.dtype)
    return grad


def gap_loss_and_grad(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, omega: torch.Tensor,
                      delta: float = 0.5, exclude_fg: bool = True, rank_offset: float = 0.5,
                      loss_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GAP value (lambda x Eq. 8), its error-driven gradient (lambda x Eq. 11), unweighted mean error.

    logits: [R, K], K >= C (columns beyond C get zero gradient); labels: [R] in 0..C (C = background);
    omega: [C] class weights. Returns (value [], grad [R, K] in logits' dtype, ranking_error []),
    all float64 scalars except grad. Inputs are assumed valid (see GAPLoss for the checks).
    """
    value, ranking_error, saved = gap_forward(logits, labels, num_classes, omega, delta, exclude_fg,
                                              rank_offset, loss_weight)
    return value, gap_gradient(saved, logits, num_classes), ranking_error


class _GAPFunction(torch.autograd.Function):
    """GAP's value in forward; its error-driven gradient (Eq. 11) written in backward."""

    @staticmethod
    def forward(ctx, logits, labels, num_classes, omega, delta, exclude_fg, rank_offset, loss_weight, for_backward):
        value, ranking_error, saved = gap_forward(logits, labels, num_classes, omega, delta, exclude_fg,
                                                  rank_offset, loss_weight, for_backward)
        # a dense pool reads the logits again in backward: saving them makes autograd refuse the
        # gradient of logits modified in place since
        ctx.save_for_backward(logits)
        ctx.saved, ctx.num_classes = saved, num_classes
        ctx.mark_non_differentiable(ranking_error)
        return value.to(logits.dtype), ranking_error

    @staticmethod
    def backward(ctx, grad_value, _):
        (logits,) = ctx.saved_tensors
        return gap_gradient(ctx.saved, logits, ctx.num_classes, grad_value), *([None] * 8)


class _ErrorDrivenUpdate(torch.autograd.Function):
    """Returns a precomputed value; backward hands back the precomputed (error-driven) gradient."""

    @staticmethod
    def forward(ctx, logits, value, grad):
        ctx.save_for_backward(grad)
        return value.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None


def error_driven(logits: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A scalar equal to `value` whose gradient w.r.t. logits is `grad` (times the upstream gradient)."""
    return _ErrorDrivenUpdate.apply(logits, value, grad)


class GAPLoss(nn.Module):
    """GAP loss on the C foreground logits of the box classifier.

    num_classes:  C.
    delta:        ramp half-width of H (Eq. 5); 0 gives the step 1[x >= 0].
    gamma:        strength of the class weights omega (Eq. 9).
    loss_weight:  lambda of Eq. 10 (the paper: 1.0 without RFS, 0.1 with RFS).
    weighting:    "online"  omega from positive RoI counts accumulated over training (buffer
                            `class_counts`, increased by each batch before omega is computed);
                  "dataset" omega from the fixed instance counts of `class_counts` (CategoryCounts,
                            the type every loss takes; `CategoryCounts.from_instance_counts` wraps
                            a [C] tensor);
                  "none"    omega = 1.
    exclude_fg:   negatives exclude other classes' positives (N-hat, the paper and the official code);
                  False ranks class m's positives against them too (N-hat(m)), Table 4's ablation.
    rank_offset:  R(i) = rank_offset + sum_{j != i} H(i, j); 0.5 official code (default), 1.0 paper.
    sync_counts:  with torch.distributed initialised, sum each batch's counts over processes
                  (False keeps the official per-GPU statistics).

    forward(logits [R, K >= C], labels [R] in 0..C, C = background) -> scalar lambda x Eq. 8, whose
    gradient is lambda x Eq. 11. No foreground: 0 and a zero gradient.
    """

    needs_ious = False  # the detector passes IoU targets to the ranking terms that set it (RSLoss)

    def __init__(self, num_classes: int, delta: float = 0.5, gamma: float = 1.0, loss_weight: float = 1.0,
                 weighting: str = "online", class_counts: CategoryCounts | None = None,
                 exclude_fg: bool = True, rank_offset: float = 0.5, sync_counts: bool = True):
        super().__init__()
        check_finite("GAPLoss", delta=delta, gamma=gamma, loss_weight=loss_weight, rank_offset=rank_offset)
        if num_classes < 1:
            raise ValueError(f"GAPLoss: num_classes must be >= 1, got {num_classes}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"GAPLoss: unknown weighting '{weighting}'; valid: {', '.join(WEIGHTINGS)}")
        if delta < 0:
            raise ValueError(f"GAPLoss: delta must be >= 0, got {delta}")
        if rank_offset <= 0:
            raise ValueError(f"GAPLoss: rank_offset must be > 0 (0.5 official, 1.0 paper), got {rank_offset}")
        if weighting == "dataset" and class_counts is None:
            raise ValueError("GAPLoss: weighting='dataset' needs class_counts (a CategoryCounts: the training set's counts)")
        counts = torch.zeros(num_classes, dtype=torch.float64)
        if class_counts is not None:
            if not isinstance(class_counts, CategoryCounts):
                raise ValueError(f"GAPLoss: class_counts must be a rog.losses.counts.CategoryCounts "
                                 f"(CategoryCounts.from_instance_counts wraps a [C] tensor), "
                                 f"got {type(class_counts).__name__}")
            if class_counts.num_classes != num_classes:
                raise ValueError(f"GAPLoss: class_counts cover {class_counts.num_classes} classes, "
                                 f"the loss has {num_classes}")
            counts = class_counts.instance_count.to(torch.float64).clone()
        self.num_classes = num_classes
        self.delta = float(delta)
        self.gamma = float(gamma)
        self.loss_weight = float(loss_weight)
        self.weighting = weighting
        self.exclude_fg = bool(exclude_fg)
        self.rank_offset = float(rank_offset)
        self.sync_counts = bool(sync_counts)
        self.register_buffer("class_counts", counts)
        self.last_ranking_error = torch.zeros((), dtype=torch.float64)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, delta={self.delta}, gamma={self.gamma}, "
                f"loss_weight={self.loss_weight}, weighting={self.weighting}, "
                f"exclude_fg={self.exclude_fg}, rank_offset={self.rank_offset}")

    def update_counts(self, labels: torch.Tensor) -> None:
        """Add the batch's positive RoIs per class to the online counts (summed over processes)."""
        fg = labels[labels < self.num_classes]
        batch = torch.bincount(fg, minlength=self.num_classes).to(self.class_counts)
        if self.sync_counts and dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)
        self.class_counts += batch

    def omega(self) -> torch.Tensor:
        """[C] current class weights of Eq. 9 (ones for weighting='none')."""
        if self.weighting == "none":
            return torch.ones_like(self.class_counts)
        return class_weights(self.class_counts, self.gamma)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_logits_labels("GAPLoss", logits, labels, self.num_classes)
        labels = labels.to(device=logits.device, dtype=torch.long)
        if self.weighting == "online" and self.training:
            self.update_counts(labels)
        for_backward = torch.is_grad_enabled() and logits.requires_grad
        value, self.last_ranking_error = _GAPFunction.apply(
            logits, labels, self.num_classes, self.omega(), self.delta, self.exclude_fg,
            self.rank_offset, self.loss_weight, for_backward)
        return value
