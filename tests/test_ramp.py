"""The bucketing behind the ranking losses: the grid look-up must equal searchsorted exactly."""
import pytest
import torch

from rog.losses.ramp import Grid, RampBuckets, bucketize, ramp


def cases():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(200, generator=g, dtype=torch.float64)
    kinks = torch.sort(torch.cat([centres - 0.5, centres + 0.5])).values
    points = torch.randn(20_000, generator=g, dtype=torch.float64) * 2
    yield "random", kinks, points
    yield "points on kinks", kinks, torch.cat([points, kinks, kinks.repeat(10)])
    tied = torch.sort(torch.cat([kinks, kinks[:50].repeat(5)])).values  # many equal kinks
    yield "tied kinks", tied, torch.cat([points, tied])
    clustered = torch.sort(torch.cat([kinks * 1e-9, torch.tensor([1e6], dtype=torch.float64)])).values
    yield "cluster and outlier", clustered, torch.cat([points * 1e-9, points, clustered])
    grid = torch.sort(((torch.randn(400, generator=g) * 4).round() / 4).double()).values
    yield "quarter grid", grid, ((points * 4).round() / 4)
    yield "all points outside", kinks, torch.cat([points.abs() + 10, -points.abs() - 10])


@pytest.mark.parametrize("name,kinks,points", list(cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_bucketize_equals_searchsorted(name, kinks, points):
    assert torch.equal(bucketize(kinks, points), torch.searchsorted(kinks, points, right=True))


def test_bucket_sums_equal_brute_force():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(40, generator=g, dtype=torch.float64)
    points = torch.randn(3000, generator=g, dtype=torch.float64) * 1.5
    weights = torch.rand(40, generator=g, dtype=torch.float64)
    for delta in (0.5, 0.1, 0.0):
        buckets = RampBuckets(centres, points, delta)
        pairwise = ramp(points[None, :] - centres[:, None], delta)           # [P, N]
        torch.testing.assert_close(buckets.sum_over_points(), pairwise.sum(1))
        torch.testing.assert_close(buckets.sum_over_centres(weights), weights @ pairwise)


def test_float32_points_against_float64_kinks_equal_searchsorted():
    """Float32 points are compared with the float64 kinks rounded up to float32: no comparison changes."""
    g = torch.Generator().manual_seed(2)
    centres = (torch.randn(300, generator=g) * 2).float().double()     # positives' scores: float32 values
    kinks = torch.sort(torch.cat([centres - 0.3, centres + 0.3])).values  # c -/+ 0.3: not float32 values
    near = kinks.float()
    points = torch.cat([torch.randn(40_000, generator=g) * 3, near,
                        torch.nextafter(near, torch.tensor(float("inf"))),
                        torch.nextafter(near, torch.tensor(-float("inf"))), centres.float()])
    assert Grid(kinks, torch.float32, points.numel()).table is not None  # the grid path, not searchsorted alone
    assert torch.equal(bucketize(kinks, points), torch.searchsorted(kinks, points.double(), right=True))


@pytest.mark.parametrize("delta", [0.5, 0.0])
def test_ramp_sums_in_blocks_over_a_strided_float32_view(monkeypatch, delta):
    """Blocks of a few rows of a strided [R, C] float32 view give the brute-force sums."""
    monkeypatch.setattr("rog.losses.ramp.BLOCK", 100)
    g = torch.Generator().manual_seed(3)
    scores = (torch.randn(90, 41, generator=g) * 1.5)[:, :40]             # row stride 41
    scores[::7, ::3] = ((scores[::7, ::3] * 4).round() / 4)               # some scores on the kinks
    centres = ((torch.randn(30, generator=g) * 4).round() / 4).double()
    weights = torch.rand(30, generator=g, dtype=torch.float64)
    buckets = RampBuckets(centres, scores, delta)
    assert buckets.grid.table is not None
    pairwise = ramp(scores.double().reshape(1, -1) - centres[:, None], delta)   # [P, R * C]
    torch.testing.assert_close(buckets.sum_over_points(), pairwise.sum(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(buckets.sum_over_centres(weights).reshape(-1), weights @ pairwise,
                               rtol=1e-12, atol=1e-12)
