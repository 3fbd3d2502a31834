"""Repeat-factor and random samplers: the formula, expectation, determinism, DDP split, resume."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rog.data.sampler import RandomSampler, RepeatFactorSampler, category_repeat_factors, repeat_factors

# 1000 images: category 0 in all of them, category 1 in 100, category 2 in one, category 3 in 4;
# the last image has no annotation.
LABELS = [[0] for _ in range(999)] + [[]]
for i in range(100):
    LABELS[i] = [0, 1, 1]
LABELS[500] = [0, 2]
for i in (600, 601, 602, 603):
    LABELS[i] = [3, 0]


def test_factors_equal_formula():
    t = 0.001
    per_category = category_repeat_factors(LABELS, t)
    f = {0: 999 / 1000, 1: 100 / 1000, 2: 1 / 1000, 3: 4 / 1000}
    for c, fc in f.items():
        assert per_category[c] == pytest.approx(max(1.0, math.sqrt(t / fc)))
    assert per_category[2] == 1.0 and per_category[3] == 1.0  # f >= t: no repeat
    r = repeat_factors(LABELS, 0.1)
    assert r[500] == pytest.approx(math.sqrt(0.1 / 0.001)) and r[600] == pytest.approx(math.sqrt(0.1 / 0.004))
    assert r[0] == pytest.approx(1.0) and r[999] == 1.0 and r[700] == 1.0  # r(I) = max; empty image 1
    assert r[5] == pytest.approx(max(1.0, math.sqrt(0.1 / 0.1)))


def test_stochastic_mean_draws_approach_factors():
    r = repeat_factors(LABELS, 0.05)  # r = sqrt(50) and sqrt(12.5) for images 500 and 600..603
    sampler = RepeatFactorSampler(r, seed=3)
    epochs = 400
    draws = np.zeros(len(r))
    for e in range(epochs):
        draws += np.bincount(sampler.epoch_indices(e), minlength=len(r))
    for i in (500, 600, 0, 999):
        sd = math.sqrt((r[i] % 1) * (1 - r[i] % 1) / epochs)
        assert abs(draws[i] / epochs - r[i]) <= 5 * sd + 1e-9
    assert len({sampler.epoch_length(e) for e in range(20)}) > 1  # stochastic rounding: lengths vary


def test_ceil_rounding_is_fixed_per_epoch():
    r = repeat_factors(LABELS, 0.05)
    sampler = RepeatFactorSampler(r, seed=0, rounding="ceil")
    counts = np.bincount(sampler.epoch_indices(0), minlength=len(r))
    assert counts[500] == math.ceil(r[500]) == 8 and counts[600] == math.ceil(r[600]) and counts[0] == 1
    assert sampler.epoch_length(0) == sampler.epoch_length(5) == int(np.ceil(r).sum())
    assert sampler.epoch_indices(0) != sampler.epoch_indices(1)  # reshuffled every epoch


def test_deterministic_given_seed_and_epoch():
    r = repeat_factors(LABELS, 0.1)
    a, b = RepeatFactorSampler(r, seed=7), RepeatFactorSampler(r, seed=7)
    assert a.epoch_indices(4) == b.epoch_indices(4)
    assert a.epoch_indices(4) != RepeatFactorSampler(r, seed=8).epoch_indices(4)
    assert RandomSampler(50, seed=1).epoch_indices(2) == RandomSampler(50, seed=1).epoch_indices(2)
    assert sorted(RandomSampler(50, seed=1).epoch_indices(2)) == list(range(50))


@pytest.mark.parametrize("make", [lambda rank: RandomSampler(10, seed=2, rank=rank, world_size=3),
                                  lambda rank: RepeatFactorSampler([1, 1, 2.5, 1, 1, 3, 1], 2, rank, 3)])
def test_ranks_split_one_epoch(make):
    samplers = [make(rank) for rank in range(3)]
    for epoch in range(3):
        full = samplers[0].global_order(epoch).tolist()
        parts = [s.epoch_indices(epoch) for s in samplers]
        assert len({len(p) for p in parts}) == 1  # same number of steps on every rank
        interleaved = [p[k] for k in range(len(parts[0])) for p in parts]
        assert interleaved[:len(full)] == full  # every index of the epoch, each once, padding after


def test_resume_at_epoch_and_position():
    sampler = RepeatFactorSampler(repeat_factors(LABELS, 0.1), seed=5)
    stream = sampler.positions()
    seen = [next(stream) for _ in range(sampler.epoch_length(0) + 17)]
    epoch, position, _ = seen[-1]
    assert epoch == 1 and position == 16
    resumed = RepeatFactorSampler(repeat_factors(LABELS, 0.1), seed=5)
    resumed.set_start(epoch, position + 1)
    expected = [next(stream)[2] for _ in range(30)]  # what the uninterrupted run draws next
    it = iter(resumed)
    assert [next(it) for _ in range(30)] == expected


def test_bad_arguments():
    with pytest.raises(ValueError, match="rounding"):
        RepeatFactorSampler([1.0], rounding="floor")
    with pytest.raises(ValueError, match="rank"):
        RandomSampler(5, rank=2, world_size=2)
