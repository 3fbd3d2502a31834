"""Data: LT-Glyphs renderer, LVIS v1 dataset, category statistics, repeat-factor sampling.

Labels are contiguous foreground indices 0..C-1 (see rog.data.lvis_dataset); the detector maps them
to its own convention at its boundary.
"""
from rog.data.build import build_dataset, build_sampler, dataset_paths
from rog.losses.counts import CategoryCounts, frequency_group
from rog.data.lvis_dataset import ImageReadError, LVISDataset, LVISFormatError, collate
from rog.data.sampler import RandomSampler, RepeatFactorSampler, repeat_factors

__all__ = [
    "CategoryCounts", "ImageReadError", "LVISDataset", "LVISFormatError", "RandomSampler",
    "RepeatFactorSampler", "build_dataset", "build_sampler", "collate", "dataset_paths", "frequency_group",
    "repeat_factors",
]
