"""The training DataLoader: batches over an infinite epoch sampler, decoded in worker processes.

Each sample's random transforms draw from torch's RNG seeded by `sample_seed(seed, rank, epoch,
position)`, inside `torch.random.fork_rng`, so a sample is the same whichever process decodes it and
whenever: the batches do not depend on the number of workers, the main process's RNG stream (RoI
sampling) is untouched by data loading, and a run resumed at a sampler position (epoch, position)
sees exactly the batches it would have seen. The loader's own generator is seeded from the run seed,
so creating it consumes nothing of the global RNG either.

Each batch comes as (images, targets, (epoch, position)): lists as `collate` makes them, and the
sampler position of its last image, from which training resumes at (epoch, position + 1).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from rog.data.lvis_dataset import collate
from rog.data.sampler import _EpochSampler


def sample_seed(seed: int, rank: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the transforms of one sample, from the run seed, rank and sampler position."""
    state = np.random.SeedSequence([int(seed), int(rank), int(epoch), int(position)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class PositionBatches(Sampler):
    """Lists of `batch_size` (epoch, position, index) from `sampler.positions()`, forever, from its start."""

    def __init__(self, sampler: _EpochSampler, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.sampler = sampler
        self.batch_size = int(batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        stream = self.sampler.positions()
        while True:
            yield [next(stream) for _ in range(self.batch_size)]


class SeededSamples(Dataset):
    """dataset[(epoch, position, index)] -> (image, target, (epoch, position)), transforms seeded per sample."""

    def __init__(self, dataset: Dataset, seed: int, rank: int = 0):
        self.dataset = dataset
        self.seed = int(seed)
        self.rank = int(rank)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]):
        epoch, position, index = key
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sample_seed(self.seed, self.rank, epoch, position))
            image, target = self.dataset[index]
        return image, target, (epoch, position)


def collate_positions(batch: list) -> tuple[list[torch.Tensor], list[dict], tuple[int, int]]:
    images, targets = collate([(image, target) for image, target, _ in batch])
    return images, targets, batch[-1][2]


def training_loader(dataset: Dataset, sampler: _EpochSampler, batch_size: int, workers: int = 0,
                    seed: int = 0, rank: int = 0, pin_memory: bool = False) -> DataLoader:
    """Infinite DataLoader of (images, targets, (epoch, position)) batches of `batch_size` images,
    from the sampler's start position (`sampler.set_start`); `workers` decoding processes (0: in
    this process, as each batch is asked for)."""
    if workers < 0:
        raise ValueError(f"train.workers must be >= 0, got {workers}")
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0]))
    return DataLoader(SeededSamples(dataset, seed, rank), batch_sampler=PositionBatches(sampler, batch_size),
                      num_workers=int(workers), collate_fn=collate_positions, pin_memory=pin_memory,
                      generator=generator, prefetch_factor=2 if workers else None)
