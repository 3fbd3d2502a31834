"""The training DataLoader: batches independent of the number of workers, exact resume, RNG left alone."""
from __future__ import annotations

import pytest
import torch

from rog.data.loader import sample_seed, training_loader
from rog.data.sampler import RandomSampler, RepeatFactorSampler


class RandomSamples(torch.utils.data.Dataset):
    """Item i -> (i + a draw of torch's RNG, {"draw": two more draws}): a stand-in for random transforms."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.tensor([float(i)]) + torch.rand(1) * 0.5, {"draw": torch.rand(2), "index": i}


def take(loader, n):
    out, it = [], iter(loader)
    for _ in range(n):
        images, targets, position = next(it)
        out.append((torch.stack(images), torch.stack([t["draw"] for t in targets]),
                    [t["index"] for t in targets], position))
    del it
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for (im1, d1, i1, p1), (im2, d2, i2, p2) in zip(a, b):
        assert torch.equal(im1, im2) and torch.equal(d1, d2) and i1 == i2 and p1 == p2


@pytest.mark.parametrize("make_sampler", [lambda: RandomSampler(10, seed=3),
                                          lambda: RepeatFactorSampler([1.0] * 5 + [2.5] * 5, seed=3)])
def test_batches_follow_the_sampler_and_do_not_depend_on_workers(make_sampler):
    sampler = make_sampler()
    expected = [next(s) for s in [sampler.positions()] for _ in range(21)]  # crosses epochs
    runs = {w: take(training_loader(RandomSamples(), make_sampler(), 3, workers=w, seed=7), 7) for w in (0, 1, 2)}
    for batch, (_, _, indices, position) in enumerate(runs[0]):
        picks = expected[3 * batch:3 * batch + 3]
        assert indices == [index for _, _, index in picks]
        assert position == picks[-1][:2]
    assert_same(runs[0], runs[1])
    assert_same(runs[0], runs[2])
    # the draws are the per-sample seeded ones
    epoch, position, index = expected[4]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sample_seed(7, 0, epoch, position))
        assert torch.equal(runs[0][1][0][1], index + torch.rand(1) * 0.5)
    # another run seed or rank draws differently, same indices
    other = take(training_loader(RandomSamples(), make_sampler(), 3, workers=0, seed=8), 2)
    assert other[0][2] == runs[0][0][2] and not torch.equal(other[0][1], runs[0][0][1])
    assert sample_seed(7, 0, 1, 2) != sample_seed(7, 1, 1, 2)


def test_resume_at_a_position_gives_the_remaining_batches():
    straight = take(training_loader(RandomSamples(), RandomSampler(10, seed=1), 4, workers=2, seed=0), 6)
    epoch, position = straight[2][3]
    sampler = RandomSampler(10, seed=1)
    sampler.set_start(epoch, position + 1)
    resumed = take(training_loader(RandomSamples(), sampler, 4, workers=2, seed=0), 3)
    assert_same(straight[3:], resumed)


def test_loading_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    take(training_loader(RandomSamples(), RandomSampler(10), 2, workers=0), 3)  # includes creating the loader
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(ValueError, match="train.workers"):
        training_loader(RandomSamples(), RandomSampler(10), 2, workers=-1)
