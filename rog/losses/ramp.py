"""Exact sums of the smoothed step H over score ranges, without a [P, N] matrix.

The ranking losses (GAP, AP loss, RS loss) compare each positive score s_i with many other scores
through the ramp

    H(x) = clamp(x / (2 delta) + 1/2, 0, 1),    x = s_j - s_i        (delta = 0: the step 1[x >= 0]).

H is piecewise linear with kinks at s_i - delta and s_i + delta. Sorting the 2P kinks of all positives
once splits the real line into 2P + 1 buckets. Inside one bucket every H(s_n - s_i) is either 0, 1 or
linear in s_n with a known slope, so

- the sum over points of H(x_n - c_i), for every centre c_i, needs only each bucket's point count and
  point sum, and prefix sums over buckets;
- the sum over centres of u_i H(x_n - c_i), for every point x_n, is linear in x_n inside a bucket,
  with per-bucket slope and intercept from one cumulative sweep over the sorted kinks.

Assigning N points to buckets costs O(N log P) with a binary search, O(N) on average with the grid
look-up of `bucketize`; the rest is O(N + P log P). Range sums accumulate in float64: at LVIS scale
(millions of points) float32 prefix sums cancel catastrophically.
"""
from __future__ import annotations

import math

import torch


def ramp(x: torch.Tensor, delta: float) -> torch.Tensor:
    """H(x) elementwise (the reference definition, used on small tensors)."""
    if delta == 0:
        return (x >= 0).to(x.dtype)
    return (x / (2 * delta) + 0.5).clamp(0.0, 1.0)


def ramp_at_zero(delta: float) -> float:
    """H(0): what a score's comparison with itself contributes (0.5, or 1 for the step)."""
    return 1.0 if delta == 0 else 0.5


def bucketize(kinks: torch.Tensor, points: torch.Tensor, cells_per_kink: int = 64) -> torch.Tensor:
    """[N] number of kinks <= each point: torch.searchsorted(kinks, points, right=True), but faster.

    kinks: [K] sorted float64; points: [N] float64. A binary search per point costs about log2(K)
    dependent memory reads. Here a uniform grid of `cells_per_kink * K` cells over [kinks[0],
    kinks[-1]] answers most points with one table look-up: a point whose cell holds no kink has as
    many kinks below it as lie in lower cells. Points sharing a cell with a kink (a few per cent) fall
    back to searchsorted. Exact: a point's cell is a monotone function of its value (a rounded
    multiply-add, then a clamp), computed by the same tensor operations for kinks and points.
    """
    num_kinks = kinks.numel()
    lo, hi = (float(kinks[0]), float(kinks[-1])) if num_kinks else (0.0, 0.0)
    cells = min(cells_per_kink * num_kinks, 1 << 22)
    scale = cells / (hi - lo) if hi > lo else math.inf
    if num_kinks < 16 or points.numel() < 8 * num_kinks or not math.isfinite(scale * max(abs(lo), abs(hi))):
        return torch.searchsorted(kinks, points, right=True)
    shift = 1.0 - lo * scale

    def cell_of(values: torch.Tensor) -> torch.Tensor:
        position = values * scale
        position += shift
        return position.clamp_(0, cells + 1).long()

    in_lower_cells = torch.searchsorted(cell_of(kinks), torch.arange(cells + 3, device=kinks.device))
    holds_kink = in_lower_cells[1:] > in_lower_cells[:-1]                   # [cells + 2]
    point_cell = cell_of(points)
    bucket = in_lower_cells.index_select(0, point_cell)
    shared = holds_kink.index_select(0, point_cell).nonzero().squeeze(1)
    bucket[shared] = torch.searchsorted(kinks, points.index_select(0, shared), right=True)
    return bucket


class RampBuckets:
    """The 2P kinks c_i -/+ delta of P centres, sorted, with every point assigned to its bucket.

    centres: [P] float64. points: [N] float64. removed: optional [Q] float64 scores that are counted
    among the points but must not be (e.g. the positives inside a dense pool): `sum_over_points`
    subtracts them.
    """

    def __init__(self, centres: torch.Tensor, points: torch.Tensor, delta: float,
                 removed: torch.Tensor | None = None):
        self.delta = float(delta)
        self.centres = centres
        self.points = points
        self.removed = removed
        num_centres = centres.numel()
        self.kinks, self.order = torch.sort(torch.cat([centres - delta, centres + delta]))
        # position of each centre's lower and upper kink in the sorted order
        position = torch.empty_like(self.order)
        position[self.order] = torch.arange(self.order.numel(), device=self.order.device)
        self.lower_pos = position[:num_centres]
        self.upper_pos = position[num_centres:]
        # bucket k holds points with kinks[k-1] <= x < kinks[k] (k = number of kinks <= x)
        self.point_bucket = bucketize(self.kinks, points)

    def _bucket_sums(self, values: torch.Tensor, bucket: torch.Tensor,
                     weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bucket (sum of weights, sum of weight x value), float64 [2P + 1] each."""
        # scatter_add_ into a few thousand bins is several times faster than bincount on CPU
        # (bincount scans its input for min and max first)
        count = values.new_zeros(self.kinks.numel() + 1)
        total = torch.zeros_like(count)
        ones = values.new_ones(()).expand_as(values) if weight is None else weight
        count.scatter_add_(0, bucket, ones)
        total.scatter_add_(0, bucket, values if weight is None else weight * values)
        return count, total

    def sum_over_points(self, point_weight: torch.Tensor | None = None) -> torch.Tensor:
        """[P] G_i = sum_n w_n H(x_n - c_i) for every centre (w = 1 when None; removed scores excluded)."""
        count, total = self._bucket_sums(self.points, self.point_bucket, point_weight)
        if self.removed is not None:
            removed_bucket = bucketize(self.kinks, self.removed)
            removed_count, removed_total = self._bucket_sums(self.removed, removed_bucket, None)
            count, total = count - removed_count, total - removed_total
        # prefix[k] = sum over buckets < k
        zero = count.new_zeros(1)
        count_prefix = torch.cat([zero, count.cumsum(0)])
        total_prefix = torch.cat([zero, total.cumsum(0)])
        # points >= upper kink: buckets upper_pos+1 .. end; ramp part: buckets lower_pos+1 .. upper_pos
        above = count_prefix[-1] - count_prefix[self.upper_pos + 1]
        if self.delta == 0:
            return above
        lo, hi = self.lower_pos + 1, self.upper_pos + 1
        ramp_count = count_prefix[hi] - count_prefix[lo]
        ramp_total = total_prefix[hi] - total_prefix[lo]
        lower_kink = self.centres - self.delta
        return above + (ramp_total - lower_kink * ramp_count) / (2 * self.delta)

    def sum_over_centres(self, centre_weight: torch.Tensor) -> torch.Tensor:
        """[N] F_n = sum_i u_i H(x_n - c_i) for every point, u = centre_weight [P].

        Inside bucket k, F is linear: F = A_k + (x B_k - D_k) / (2 delta) where A sums the weights of
        the ramps already saturated, B those of the ramps x is on, D their weights times lower kinks;
        one cumulative sweep over the sorted kinks gives all three.
        """
        lower_kink = self.centres - self.delta
        zero = centre_weight.new_zeros(1)
        # events in sorted kink order: entering a ramp adds (u, u * lower) to (B, D); leaving it
        # removes them and adds u to the saturated part A.
        saturated = torch.cat([torch.zeros_like(centre_weight), centre_weight])[self.order]
        per_bucket_a = torch.cat([zero, saturated.cumsum(0)])
        if self.delta == 0:
            return per_bucket_a.index_select(0, self.point_bucket)
        slope = torch.cat([centre_weight, -centre_weight])[self.order]
        offset = torch.cat([centre_weight * lower_kink, -centre_weight * lower_kink])[self.order]
        per_bucket_b = torch.cat([zero, slope.cumsum(0)]) / (2 * self.delta)
        per_bucket_d = torch.cat([zero, offset.cumsum(0)]) / (2 * self.delta)
        intercept = per_bucket_a - per_bucket_d
        return torch.addcmul(intercept.index_select(0, self.point_bucket), self.points,
                             per_bucket_b.index_select(0, self.point_bucket))


def grouped(scores: torch.Tensor, groups: torch.Tensor, delta: float) -> torch.Tensor:
    """Shift each group's scores into its own interval, so that one sorted pass handles all groups.

    scores: [P] float64, groups: [P] int64 >= 0. Returns [P] float64 in which any score of a higher
    group exceeds any score of a lower group by more than delta: across groups H is exactly 0 or 1.
    """
    span = float(scores.max() - scores.min()) + 4 * delta + 1.0
    return scores + groups.to(scores.dtype) * span


class GroupedRampBuckets:
    """Ramp sums restricted to pairs within the same group (e.g. the positives of one class).

    scores: [P] float64, groups: [P] int64 >= 0; each score is both a point and a centre, so the self
    pair is included and contributes H(0). Groups are shifted apart (`grouped`); a higher group then
    sits wholly above a lower one, and that saturated cross-group part is subtracted with per-group
    totals.
    """

    def __init__(self, scores: torch.Tensor, groups: torch.Tensor, delta: float):
        shifted = grouped(scores, groups, delta)
        self.buckets = RampBuckets(shifted, shifted, delta)
        self.groups = groups
        self.num_groups = int(groups.max()) + 1 if groups.numel() else 0

    def sum_over_points(self) -> torch.Tensor:
        """[P] count_i = sum_{q in group(i)} H(s_q - s_i)."""
        size = torch.bincount(self.groups, minlength=self.num_groups).to(self.buckets.points.dtype)
        in_higher_groups = size.flip(0).cumsum(0).flip(0) - size
        return self.buckets.sum_over_points() - in_higher_groups[self.groups]

    def sum_over_centres(self, centre_weight: torch.Tensor) -> torch.Tensor:
        """[P] weighted_q = sum_{i in group(q)} u_i H(s_q - s_i), u = centre_weight [P]."""
        weight = torch.bincount(self.groups, weights=centre_weight, minlength=self.num_groups)
        in_lower_groups = weight.cumsum(0) - weight
        return self.buckets.sum_over_centres(centre_weight) - in_lower_groups[self.groups]
