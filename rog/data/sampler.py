"""Training samplers: repeat-factor sampling (LVIS) and plain random order, same interface.

Repeat factors (LVIS paper, appendix): with f(c) the fraction of training images that contain
category c and threshold t (0.001),

    r(c) = max(1, sqrt(t / f(c)))        r(I) = max over the categories of image I (1 if it has none)

Each epoch an image appears r(I) times in expectation: detectron2's stochastic rounding draws
floor(r) + Bernoulli(r - floor(r)) copies anew every epoch (`rounding="stochastic"`, the default);
mmdet's ClassBalancedDataset (used by the official ROG runs) takes ceil(r) copies every epoch
(`rounding="ceil"`).

Both samplers are deterministic given (seed, epoch): every rank computes the same global order of the
epoch, pads it to a multiple of world_size by wrapping around (so all ranks take the same number of
steps under DDP), and takes the slice rank::world_size. Iterating a sampler yields indices forever,
epoch after epoch, starting at `set_start(epoch, position)`, so a training loop that checkpoints
(epoch, position) resumes exactly where it stopped; `positions()` yields (epoch, position, index).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch


def category_repeat_factors(image_labels: Sequence[Sequence[int]], threshold: float = 0.001) -> dict[int, float]:
    """r(c) for every label seen: {label: max(1, sqrt(t / f(c)))}, f over len(image_labels) images."""
    num_images = len(image_labels)
    image_count: dict[int, int] = {}
    for labels in image_labels:
        for c in set(int(x) for x in labels):
            image_count[c] = image_count.get(c, 0) + 1
    return {c: max(1.0, math.sqrt(threshold / (n / num_images))) for c, n in sorted(image_count.items())}


LVIS_V1_TRAIN_IMAGES = 99_388  # annotated training images of LVIS v1, for which t = 0.001 was chosen


def scaled_threshold(threshold: float, threshold_images: int | None, num_images: int) -> float:
    """RFS's t for a training set of `num_images`, given t was chosen for `threshold_images` (None: as is).

    A category's repeat factor sqrt(t / f(c)) depends on t x N / (its images), so t x N fixes which categories
    repeat and how much: t = 0.001 over LVIS's 99,388 images gives a 3,000-image set LVIS's factors at
    t = 0.001 x 99,388 / 3,000 = 0.033.
    """
    if threshold_images is None:
        return float(threshold)
    if num_images < 1:
        raise ValueError("scaled_threshold: the training set has no annotated images")
    return min(1.0, float(threshold) * int(threshold_images) / int(num_images))


def repeat_factors(image_labels: Sequence[Sequence[int]], threshold: float = 0.001) -> np.ndarray:
    """r(I) for every image: float64 [N]; 1.0 for images without labels.

    image_labels: for each image, the labels of its annotations (repeats allowed).
    """
    per_category = category_repeat_factors(image_labels, threshold)
    return np.array([max((per_category[int(c)] for c in labels), default=1.0) for labels in image_labels],
                    dtype=np.float64)


class _EpochSampler(torch.utils.data.Sampler):
    """Shared machinery: per-epoch global order -> padded -> this rank's slice; infinite iteration."""

    def __init__(self, num_items: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if num_items <= 0:
            raise ValueError("a sampler needs at least one item")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..world_size-1 (world_size {world_size})")
        self.num_items = int(num_items)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start_epoch = 0
        self.start_position = 0

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))

    def global_order(self, epoch: int) -> np.ndarray:
        """int64 [M]: the epoch's dataset indices over all ranks, before padding."""
        raise NotImplementedError

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices for `epoch` (every rank gets the same number)."""
        order = self.global_order(epoch)
        per_rank = -(-len(order) // self.world_size)
        padded = np.resize(order, per_rank * self.world_size)  # wraps around
        return padded[self.rank::self.world_size].tolist()

    def epoch_length(self, epoch: int) -> int:
        return len(self.epoch_indices(epoch))

    def set_start(self, epoch: int, position: int = 0) -> None:
        """Resume: the next index yielded is epoch_indices(epoch)[position]."""
        self.start_epoch, self.start_position = int(epoch), int(position)

    def positions(self, epoch: int | None = None, position: int | None = None) -> Iterator[tuple[int, int, int]]:
        """Infinite stream of (epoch, position, index); checkpoint (epoch, position + 1) after a step."""
        epoch = self.start_epoch if epoch is None else int(epoch)
        position = self.start_position if position is None else int(position)
        while True:
            indices = self.epoch_indices(epoch)
            for p in range(position, len(indices)):
                yield epoch, p, indices[p]
            epoch, position = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        return (index for _, _, index in self.positions())


class RandomSampler(_EpochSampler):
    """A fresh permutation of all items every epoch."""

    def global_order(self, epoch: int) -> np.ndarray:
        return self._rng(epoch).permutation(self.num_items)


class RepeatFactorSampler(_EpochSampler):
    """Repeat-factor sampling: image i appears r[i] times per epoch in expectation (see module doc).

    factors: float [N] repeat factors (`repeat_factors(dataset.image_labels(), t)`).
    rounding: "stochastic" (detectron2) or "ceil" (mmdet).
    """

    def __init__(self, factors: Sequence[float], seed: int = 0, rank: int = 0, world_size: int = 1,
                 rounding: str = "stochastic"):
        super().__init__(len(factors), seed, rank, world_size)
        if rounding not in ("stochastic", "ceil"):
            raise ValueError(f"rounding must be 'stochastic' or 'ceil', got {rounding!r}")
        self.factors = np.asarray(factors, dtype=np.float64)
        if (self.factors < 1.0).any():
            raise ValueError("repeat factors must be >= 1")
        self.rounding = rounding

    def copies(self, epoch: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """int64 [N]: how many times each image appears in `epoch`."""
        if self.rounding == "ceil":
            return np.ceil(self.factors).astype(np.int64)
        rng = self._rng(epoch) if rng is None else rng
        whole = np.floor(self.factors)
        return (whole + (rng.random(self.num_items) < self.factors - whole)).astype(np.int64)

    def global_order(self, epoch: int) -> np.ndarray:
        rng = self._rng(epoch)
        indices = np.repeat(np.arange(self.num_items), self.copies(epoch, rng))
        return indices[rng.permutation(len(indices))]
