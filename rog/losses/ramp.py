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
look-up of `Grid`; the rest is O(N + P log P). The points (float32 or float64 logits, an [R, C] view
of them or a compacted [N] pool) are read block by block and never copied whole; each point's bucket
is kept (int32) for the per-point pass. Range sums accumulate in float64: at LVIS scale (millions of
points) float32 prefix sums cancel catastrophically.
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


def round_up_to(kinks: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[K] each kink rounded up to the nearest value of `dtype` (kinks in a wider float type).

    For any x representable in dtype, x >= kink exactly when x >= the rounded-up kink: the points can be
    compared with the kinks in their own, narrower type without changing a single comparison.
    """
    narrow = kinks.to(dtype)
    below = narrow.to(kinks.dtype) < kinks
    return torch.where(below, torch.nextafter(narrow, narrow.new_full((), math.inf)), narrow)


# Passes over millions of scores run on blocks of about this many entries: the block's temporaries stay
# in cache and are reused, where whole-size temporaries would each cost a fresh allocation (on Linux,
# one page fault per 4 KiB, as long again as the pass itself). On a GPU every pass is one block.
BLOCK = 1 << 16


def blocks(values: torch.Tensor) -> int:
    """Rows of values (dim 0) per block of about BLOCK entries; every row at once on a GPU."""
    if values.device.type != "cpu":
        return max(1, values.shape[0])
    return max(1, BLOCK // max(1, math.prod(values.shape[1:])))


class Grid:
    """Bucketize many points against sorted kinks by table look-up: searchsorted(kinks, x, right=True).

    kinks: [K] sorted float64 (or dtype's); dtype: the points' float type (float32 points are compared in
    float32 with the kinks rounded up, which changes no comparison). A binary search per point costs
    about log2(K) dependent memory reads. Here a uniform grid of `cells_per_kink * K` cells over
    [kinks[0], kinks[-1]] answers most points with one table look-up: a point whose cell holds no kink
    has as many kinks below it as lie in lower cells. Points sharing a cell with a kink (well under one
    per cent) fall back to searchsorted. Exact: a point's cell is a monotone function of its value (a
    rounded subtraction, a rounded multiply, a clamp), computed by the same tensor operations on the same
    dtype for kinks and points. Few kinks, or a range the grid cannot cover, use searchsorted alone.
    """

    def __init__(self, kinks: torch.Tensor, dtype: torch.dtype, num_points: int, cells_per_kink: int = 128):
        self.kinks = kinks if kinks.dtype == dtype else round_up_to(kinks, dtype)
        num_kinks = kinks.numel()
        lo, hi = (float(self.kinks[0]), float(self.kinks[-1])) if num_kinks else (0.0, 0.0)
        self.cells = min(cells_per_kink * num_kinks, 1 << 22)
        self.table = None
        # a scale far inside float32's range, so that no position is inf x 0
        if num_kinks < 16 or num_points < 8 * num_kinks or not 0 < self.cells < 1e30 * (hi - lo):
            return
        self.scale = self.cells / (hi - lo)
        self.origin = lo - 2 / self.scale     # the lowest kink at position 2, the highest at cells + 2
        kink_cell = self._cells(self.kinks, torch.empty_like(self.kinks),
                                torch.empty_like(self.kinks, dtype=torch.int32)).long()
        # table[c] = number of kinks in cells < c, or -1 where cell c holds a kink (int32 throughout:
        # half the bytes of int64 to convert, look up and keep); each kink steps it up after its cell
        steps = torch.zeros(self.cells + 5, dtype=torch.int32, device=kinks.device)
        steps.index_add_(0, kink_cell + 1, torch.ones(num_kinks, dtype=torch.int32, device=kinks.device))
        self.table = steps.cumsum(0, dtype=torch.int32)[:-1].index_fill_(0, kink_cell, -1)  # [cells + 4]

    def _cells(self, values: torch.Tensor, position: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """[n] int32 cell of each value (values: any shape, n entries); position, cell: [n] scratch.

        Subtracting the origin first keeps the lowest kink's position (about 2) free of cancellation:
        scores far below all kinks then share cell 0 with no kink, those far above cell `cells + 3`.
        """
        position = torch.sub(values, self.origin, out=position.view(values.shape)).view(-1)
        position *= self.scale
        position.clamp_(0, self.cells + 3)
        return cell.copy_(position)

    def scratch(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Tensors `assign` can reuse for blocks of up to n points of this dtype."""
        return (torch.empty(n, dtype=dtype, device=device), torch.empty(n, dtype=torch.int32, device=device),
                torch.empty(n, dtype=torch.int32, device=device))

    def assign(self, points: torch.Tensor, scratch: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """[n] int32 bucket of each point (points: any shape, n entries, any strides).

        scratch: from `scratch`, reused between blocks; the result is a view of its last tensor.
        """
        n = points.numel()
        if scratch is None:
            scratch = self.scratch(n, points.dtype, points.device)
        bucket = scratch[2][:n]
        if self.table is None:
            return bucket.copy_(torch.searchsorted(self.kinks, points.contiguous(), right=True, out_int32=True).view(-1))
        cell = self._cells(points, scratch[0][:n], scratch[1][:n])
        torch.index_select(self.table, 0, cell, out=bucket)
        shared = (bucket < 0).nonzero().squeeze(1)
        # torch.take reads a strided block in place, in row-major order
        bucket[shared] = torch.searchsorted(self.kinks, torch.take(points, shared), right=True, out_int32=True)
        return bucket


def bucketize(kinks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Number of kinks <= each point: torch.searchsorted(kinks, points, right=True), but faster (`Grid`).

    kinks: [K] sorted float64 (or points' dtype); points: any shape, float32 or float64. Returns int64
    in points' shape.
    """
    return Grid(kinks, points.dtype, points.numel()).assign(points).long().view(points.shape)


class RampBuckets:
    """The 2P kinks c_i -/+ delta of P centres, sorted, every point's bucket and per-bucket sums.

    centres: [P] float64. points: any shape (an [R, C] view of the logits, say, strided or not),
    float32 or float64; read block by block, never copied whole. removed: optional [Q] float64 scores
    that are counted among the points but must not be (e.g. the positives inside a dense pool):
    `sum_over_points` subtracts them. bucket_store: where to keep each point's bucket for
    `at_points`, an int32 or int64 tensor of points' shape, any strides (None: a new int32 tensor;
    False: not kept, `at_points` unavailable until `keep_buckets`).
    """

    def __init__(self, centres: torch.Tensor, points: torch.Tensor, delta: float,
                 removed: torch.Tensor | None = None, bucket_store: torch.Tensor | bool | None = None):
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
        if bucket_store is None:
            bucket_store = self._new_store()
        self.bucket_store = bucket_store if isinstance(bucket_store, torch.Tensor) else None
        # bucket k holds points with kinks[k-1] <= x < kinks[k] (k = number of kinks <= x)
        self.grid = Grid(self.kinks, points.dtype, points.numel())
        self.count, self.total = self._bucket_sums()

    def _new_store(self) -> torch.Tensor:
        return torch.empty(self.points.shape, dtype=torch.int32, device=self.points.device)

    def keep_buckets(self) -> None:
        """Bucketize the points again into a new bucket store (the first one was given away)."""
        self.bucket_store = self._new_store()
        rows = blocks(self.points)
        for points, store in zip(self.points.split(rows), self.bucket_store.split(rows)):
            store.copy_(self.grid.assign(points).view(points.shape))

    def _bucket_sums(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-bucket (point count, point sum), float64 [2P + 1] each (no sum for the step, delta = 0).

        One pass over the points, block by block: bucketize, count, sum, keep the buckets.
        """
        bins = self.kinks.numel() + 1
        device = self.points.device
        count = torch.zeros(bins, dtype=torch.long, device=device)
        total = None if self.delta == 0 else torch.zeros(bins, dtype=torch.float64, device=device)
        if self.points.numel() == 0:
            return count.double(), total
        rows = blocks(self.points)
        block = self.points[:rows].numel()
        scratch = self.grid.scratch(block, self.points.dtype, device)
        wide = torch.empty(block, dtype=torch.float64, device=device)
        index = torch.empty(block, dtype=torch.long, device=device)
        stores = self.bucket_store.split(rows) if self.bucket_store is not None else None
        for k, points in enumerate(self.points.split(rows)):
            n = points.numel()
            bucket = self.grid.assign(points, scratch)
            count += torch.bincount(bucket, minlength=bins)            # integers: exact in any order
            if total is not None:
                # float64 sums, added one by one in the points' order across blocks (float32 sums put
                # FP(i) 7e-6 off at 2048 x 1203, and worse with more points); scatter_add_ takes int64
                # indices only
                exact = wide[:n].view(points.shape).copy_(points).view(-1)
                total.scatter_add_(0, index[:n].copy_(bucket), exact)
            if stores is not None:
                stores[k].copy_(bucket.view(points.shape))
        return count.double(), total

    def buckets_at(self, flat_index: torch.Tensor) -> torch.Tensor:
        """[Q] int32 bucket of the points at these flat indices (points' row-major order)."""
        return torch.take(self.bucket_store, flat_index)

    def sum_over_points(self) -> torch.Tensor:
        """[P] G_i = sum_n H(x_n - c_i) for every centre (removed scores excluded)."""
        count, total = self.count, self.total
        if self.removed is not None:
            removed_bucket = bucketize(self.kinks, self.removed)
            count = count - torch.zeros_like(count).scatter_add_(
                0, removed_bucket, self.removed.new_ones(()).expand_as(self.removed))
            if total is not None:
                total = total - torch.zeros_like(total).scatter_add_(0, removed_bucket, self.removed)
        # prefix[k] = sum over buckets < k
        zero = count.new_zeros(1)
        count_prefix = torch.cat([zero, count.cumsum(0)])
        # points >= upper kink: buckets upper_pos+1 .. end; ramp part: buckets lower_pos+1 .. upper_pos
        above = count_prefix[-1] - count_prefix[self.upper_pos + 1]
        if total is None:
            return above
        total_prefix = torch.cat([zero, total.cumsum(0)])
        lo, hi = self.lower_pos + 1, self.upper_pos + 1
        ramp_count = count_prefix[hi] - count_prefix[lo]
        ramp_total = total_prefix[hi] - total_prefix[lo]
        lower_kink = self.centres - self.delta
        return above + (ramp_total - lower_kink * ramp_count) / (2 * self.delta)

    def centre_tables(self, centre_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-bucket (intercept, slope), float64 [2P + 1] each (slope None for the step, delta = 0).

        F_n = sum_i u_i H(x_n - c_i), u = centre_weight [P], is linear inside bucket k:
        F = A_k + (x B_k - D_k) / (2 delta) where A sums the weights of the ramps already saturated, B
        those of the ramps x is on, D their weights times lower kinks; one cumulative sweep over the
        sorted kinks gives all three. Returns (A - D / (2 delta), B / (2 delta)).
        """
        lower_kink = self.centres - self.delta
        zero = centre_weight.new_zeros(1)
        # events in sorted kink order: entering a ramp adds (u, u * lower) to (B, D); leaving it
        # removes them and adds u to the saturated part A.
        saturated = torch.cat([torch.zeros_like(centre_weight), centre_weight])[self.order]
        per_bucket_a = torch.cat([zero, saturated.cumsum(0)])
        if self.delta == 0:
            return per_bucket_a, None
        slope = torch.cat([centre_weight, -centre_weight])[self.order]
        offset = torch.cat([centre_weight * lower_kink, -centre_weight * lower_kink])[self.order]
        per_bucket_b = torch.cat([zero, slope.cumsum(0)]) / (2 * self.delta)
        per_bucket_d = torch.cat([zero, offset.cumsum(0)]) / (2 * self.delta)
        return per_bucket_a - per_bucket_d, per_bucket_b

    def at_points(self, tables: tuple[torch.Tensor, torch.Tensor | None],
                  out: torch.Tensor | None = None) -> torch.Tensor:
        """F at every point from `centre_tables`, block by block, into `out` (points' shape, any float
        dtype and strides; it may share memory with the bucket store); None: a new float64 tensor."""
        if out is None:
            out = torch.empty(self.points.shape, dtype=torch.float64, device=self.points.device)
        if self.points.numel() == 0:
            return out
        rows = blocks(self.points)
        block = self.points[:rows].numel()
        bucket = torch.empty(block, dtype=torch.int32, device=out.device)
        scratch = tuple(torch.empty(block, dtype=torch.float64, device=out.device) for _ in range(3))
        for points, stored, target in zip(self.points.split(rows), self.bucket_store.split(rows), out.split(rows)):
            n = points.numel()
            # read the block's buckets before `out`, which may share their memory, is written
            read = bucket[:n].view(points.shape).copy_(stored).view(-1)
            target.copy_(evaluate_tables(tables, read, points, scratch).view(points.shape))
        return out

    def sum_over_centres(self, centre_weight: torch.Tensor) -> torch.Tensor:
        """F_n = sum_i u_i H(x_n - c_i) for every point (float64, points' shape), u = centre_weight [P]."""
        return self.at_points(self.centre_tables(centre_weight))


def evaluate_tables(tables: tuple[torch.Tensor, torch.Tensor | None], bucket: torch.Tensor,
                    points: torch.Tensor, scratch: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """[n] float64 intercept[bucket] + points x slope[bucket] (intercept alone for the step).

    bucket: [n] int32 or int64; points: n entries, any shape and float dtype; scratch: three float64 [>= n]
    tensors to reuse (the result is a view of the first). Float64 because intercept and score x slope
    cancel: in float32, 5 % of the gradient entries of a 2048 x 1203 batch would be off by more than
    1e-6 relative (up to 4e-4).
    """
    n = bucket.numel()
    if scratch is None:
        scratch = tuple(torch.empty(n, dtype=torch.float64, device=bucket.device) for _ in range(3))
    intercept, slope = tables
    values = torch.index_select(intercept, 0, bucket, out=scratch[0][:n])
    if slope is None:
        return values
    wide = scratch[1][:n].view(points.shape).copy_(points).view(-1)
    return torch.addcmul(values, wide, torch.index_select(slope, 0, bucket, out=scratch[2][:n]), out=values)


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
