"""The per-category training statistics, re-exported here for data code; they live in rog.losses.counts
so that the losses import no dataset code."""
from rog.losses.counts import CategoryCounts, frequency_group

__all__ = ["CategoryCounts", "frequency_group"]
