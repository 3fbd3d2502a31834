"""The bucketing behind the ranking losses: the grid look-up must equal searchsorted exactly."""
import pytest
import torch

from rog.losses.ramp import RampBuckets, bucketize, ramp


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
